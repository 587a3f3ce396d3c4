// Bias gradient: dL/db[c] = sum over batch and space of dL/dy[..., c].
//
// TinyTL's key observation: a bias gradient needs no stored input activation,
// only the gradient flowing into the layer's output, so bias-only training
// costs almost no extra memory.
#ifndef TFLM_KERNELS_REFERENCE_BIAS_GRAD_H_
#define TFLM_KERNELS_REFERENCE_BIAS_GRAD_H_

#include <stdint.h>

#include "tflm_kernels/reference/sgd.h"

namespace tflite_tl {
namespace reference {

// grad_output: [rows, channels] (rows = batch * height * width, NHWC order).
// grad_bias:   [channels], overwritten.
inline void BiasGrad(const float* grad_output, int32_t rows, int32_t channels,
                     float* grad_bias) {
  for (int32_t c = 0; c < channels; ++c) grad_bias[c] = 0.0f;
  for (int32_t r = 0; r < rows; ++r) {
    const float* row = grad_output + static_cast<int64_t>(r) * channels;
    for (int32_t c = 0; c < channels; ++c) grad_bias[c] += row[c];
  }
}

// Bias gradient fused with the SGD step bias -= learning_rate * grad, done in
// place so no gradient buffer is needed. The per-channel sums run in the same
// order as BiasGrad, so the result is bit-identical to BiasGrad followed by
// SgdUpdate. grad_bias may be null; if not, it receives the gradient.
inline void BiasGradFusedSgd(const float* grad_output, int32_t rows,
                             int32_t channels, float learning_rate,
                             float* bias, float* grad_bias) {
  for (int32_t c = 0; c < channels; ++c) {
    float sum = 0.0f;
    for (int32_t r = 0; r < rows; ++r) {
      sum += grad_output[static_cast<int64_t>(r) * channels + c];
    }
    if (grad_bias != nullptr) grad_bias[c] = sum;
    bias[c] = SgdStep(bias[c], sum, learning_rate);
  }
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_BIAS_GRAD_H_
