// Quantization of a stored activation, for gradients that read activations
// saved by an int8 forward pass (tiny-training: int8 forward, float
// backward). Saving the int8 tensor instead of a float copy keeps activation
// memory at 1 byte per element.
#ifndef TFLM_KERNELS_REFERENCE_ACTIVATION_QUANTIZATION_H_
#define TFLM_KERNELS_REFERENCE_ACTIVATION_QUANTIZATION_H_

#include <stdint.h>

namespace tflite_tl {
namespace reference {

// real = scale * (q - zero_point). Float activations use the identity
// {1.0f, 0}, for which the kernels skip the rescaling.
struct ActivationQuantization {
  float scale;
  int32_t zero_point;
};

constexpr ActivationQuantization kNoQuantization = {1.0f, 0};

// Centred value q - zero_point as float; exact for int8 inputs.
inline float Centred(float x, int32_t) { return x; }
inline float Centred(int8_t q, int32_t zero_point) {
  return static_cast<float>(static_cast<int32_t>(q) - zero_point);
}

// Applies the per-tensor scale once to an accumulated gradient, instead of
// once per product.
inline void ApplyScale(const ActivationQuantization& quant, int32_t size,
                       float* values) {
  if (quant.scale == 1.0f) return;
  for (int32_t i = 0; i < size; ++i) values[i] *= quant.scale;
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_ACTIVATION_QUANTIZATION_H_
