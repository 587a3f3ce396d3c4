// The fused activations of the float forward kernels (TL_DEPTHWISE_CONV,
// TL_CONV): none, ReLU, ReLU6, applied to the biased sum.
#ifndef TFLM_KERNELS_REFERENCE_ACTIVATION_H_
#define TFLM_KERNELS_REFERENCE_ACTIVATION_H_

#include <math.h>

namespace tflite_tl {
namespace reference {

enum class Activation { kNone = 0, kRelu = 1, kRelu6 = 2 };

inline float Activate(Activation act, float v) {
  if (act == Activation::kNone) return v;
  if (v < 0.0f) return 0.0f;
  if (act == Activation::kRelu6 && v > 6.0f) return 6.0f;
  return v;
}

// Upper bound of the activation's linear range (its mask is
// 0 < y < ActivationUpper): 6 for ReLU6, +inf for ReLU.
inline float ActivationUpper(Activation act) {
  return act == Activation::kRelu6 ? 6.0f : INFINITY;
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_ACTIVATION_H_
