// Stochastic gradient descent, with optional (heavy-ball) momentum.
//
// Same arithmetic as Keras' SGD optimizer, so a device update and a host
// update from the same gradient agree to the last bit (without FMA
// contraction):
//   plain:    w = w + (-g * lr)
//   momentum: v = (-g * lr) + v * momentum;  w = w + v
//
// Except that a gradient element that is not finite (NaN or inf) updates
// nothing: its weight (and velocity) keep their values. A step whose loss
// is not finite gets an all-zero gradient from TL_SOFTMAX_XENT, but every
// gradient that multiplies it by a saved activation that overflowed is
// 0 * inf = NaN; on a board, one such NaN would poison the weight for good.
// Finite gradients update exactly as Keras does.
#ifndef TFLM_KERNELS_REFERENCE_SGD_H_
#define TFLM_KERNELS_REFERENCE_SGD_H_

#include <stdint.h>

#include "tflm_kernels/reference/finite.h"

namespace tflite_tl {
namespace reference {

// One weight: the update of the in-place kernels (TL_CONV_UPDATE, the norm
// gradients, the fused bias gradient), which apply SGD to each gradient as
// soon as it is summed.
inline float SgdStep(float weight, float grad, float learning_rate) {
  return IsFinite(grad) ? weight + (-grad * learning_rate) : weight;
}

inline void SgdUpdate(const float* grad, int32_t size, float learning_rate,
                      float* weights) {
  for (int32_t i = 0; i < size; ++i) {
    weights[i] = SgdStep(weights[i], grad[i], learning_rate);
  }
}

// velocity holds the running update (Keras' "momentum" slot), starts at 0.
inline void SgdMomentumUpdate(const float* grad, int32_t size,
                              float learning_rate, float momentum,
                              float* velocity, float* weights) {
  for (int32_t i = 0; i < size; ++i) {
    if (!IsFinite(grad[i])) continue;
    velocity[i] = (-grad[i] * learning_rate) + velocity[i] * momentum;
    weights[i] = weights[i] + velocity[i];
  }
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_SGD_H_
