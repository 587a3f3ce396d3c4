// Re-quantization of trained parameters for an int8 forward pass.
//
// An int8 graph keeps a float "master" copy of each trained parameter; after
// every SGD step of the master, the int8 filter and int32 bias that the
// forward pass reads are rewritten from it with the scales the converter
// chose. Rounding is half away from zero, as TFLite's quantizer
// (TfLiteRound = std::round) does.
#ifndef TFLM_KERNELS_REFERENCE_REQUANTIZE_H_
#define TFLM_KERNELS_REFERENCE_REQUANTIZE_H_

#include <math.h>
#include <stdint.h>

namespace tflite_tl {
namespace reference {

// Per-channel symmetric int8 weight: clamp(round(value / scale), -127, 127).
// NaN maps to 0 (never reached in training: a non-finite loss zeroes the
// gradients), so no undefined float-to-int conversion can happen.
inline int8_t QuantizeWeight(float value, float scale) {
  const float q = roundf(value / scale);
  if (!(q == q)) return 0;
  if (q > 127.0f) return 127;
  if (q < -127.0f) return -127;
  return static_cast<int8_t>(q);
}

// int32 bias with scale s_input * s_filter[c]: round(value / scale), saturated
// to int32. In double: |value / scale| exceeds float's 24-bit mantissa for
// small scales, and this runs once per channel.
inline int32_t QuantizeBias(float value, float scale) {
  const double q = round(static_cast<double>(value) / static_cast<double>(scale));
  if (!(q == q)) return 0;
  if (q >= 2147483647.0) return INT32_MAX;
  if (q <= -2147483648.0) return INT32_MIN;
  return static_cast<int32_t>(q);
}

// The int32 biases an int8 conv stage reads, from a trained float bias:
// QuantizeBias with scale input_scale * filter_scales[c], the float32
// product the converter stores as the int32 bias's scale, so the result is
// the int32 copy an update op would have written (TL_CONV and
// TL_DEPTHWISE_CONV quantize per invoke instead of keeping that copy).
inline void QuantizeBiases(const float* bias, float input_scale,
                           const float* filter_scales, int32_t channels,
                           int32_t* bias_q) {
  for (int32_t c = 0; c < channels; ++c) {
    const float scale = input_scale * filter_scales[c];
    bias_q[c] = QuantizeBias(bias[c], scale);
  }
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_REQUANTIZE_H_
