// One int8 convolution stage as TFLite's int8 kernels compute it (CONV_2D,
// DEPTHWISE_CONV_2D with per-channel int8 filters, zero points 0, int32
// biases): the int32 accumulator of a channel,
//   acc = bias[c] + sum filter[c, ...] * (q_in - zero_point_in),
// then
//   q = clamp(zero_point_out + MultiplyByQuantizedMultiplier(acc, m[c], s[c]),
//             act_min, act_max)
// with TFLite's double-rounding fixed-point multiply (gemmlowp's
// SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT), and the
// multipliers m, s from input_scale * filter_scale[c] / output_scale in
// double (QuantizeMultiplier). Shared by the fused inverted-residual block
// and the int8 convolutions of a training graph (conv_int8.h), so both are
// value for value TFLM's builtins.
#ifndef TFLM_KERNELS_REFERENCE_INT8_STAGE_H_
#define TFLM_KERNELS_REFERENCE_INT8_STAGE_H_

#include <math.h>
#include <stdint.h>

namespace tflite_tl {
namespace reference {

// gemmlowp's SaturatingRoundingDoublingHighMul: the high 32 bits of 2*a*b,
// rounded to nearest (ties away from zero), saturated for INT32_MIN^2.
inline int32_t RoundingDoublingHighMul(int32_t a, int32_t b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  const int64_t product = static_cast<int64_t>(a) * static_cast<int64_t>(b);
  const int64_t nudge = product >= 0 ? (int64_t{1} << 30)
                                     : (int64_t{1} - (int64_t{1} << 30));
  // C++ division truncates toward zero, as gemmlowp's does.
  return static_cast<int32_t>((product + nudge) / (int64_t{1} << 31));
}

// gemmlowp's RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties
// away from zero. exponent in [0, 31].
inline int32_t RoundingShiftRight(int32_t x, int32_t exponent) {
  const int32_t mask =
      static_cast<int32_t>((int64_t{1} << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

// TFLite's MultiplyByQuantizedMultiplier (double rounding): x * m * 2^shift
// with m a Q31 mantissa.
inline int32_t ScaleByQuantizedMultiplier(int32_t x, int32_t multiplier,
                                          int32_t shift) {
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift > 0 ? 0 : -shift;
  // A left shift of a negative number in wrapping 32-bit arithmetic.
  const int32_t shifted = static_cast<int32_t>(
      static_cast<uint32_t>(x) << static_cast<uint32_t>(left));
  return RoundingShiftRight(RoundingDoublingHighMul(shifted, multiplier),
                            right);
}

// TFLite's QuantizeMultiplier: real = multiplier * 2^(shift - 31) with a
// Q31 mantissa in [2^30, 2^31), from frexp and round half away from zero;
// multipliers below 2^-32 become 0. Prepare-time (double).
inline void QuantizeScale(double real, int32_t* multiplier, int32_t* shift) {
  if (real == 0.0) {
    *multiplier = 0;
    *shift = 0;
    return;
  }
  int exponent = 0;
  const double mantissa = frexp(real, &exponent);
  int64_t fixed = static_cast<int64_t>(round(mantissa * 2147483648.0));
  if (fixed == (int64_t{1} << 31)) {
    fixed /= 2;
    ++exponent;
  }
  if (exponent < -31) {
    exponent = 0;
    fixed = 0;
  }
  *multiplier = static_cast<int32_t>(fixed);
  *shift = exponent;
}

// The per-channel multipliers of a conv stage: input_scale * filter_scale[c]
// / output_scale in double, as TFLite's conv kernels compute them.
inline void StageMultipliers(float input_scale, const float* filter_scales,
                             float output_scale, int32_t channels,
                             int32_t* multipliers, int32_t* shifts) {
  for (int32_t c = 0; c < channels; ++c) {
    const double real = static_cast<double>(input_scale) *
                        static_cast<double>(filter_scales[c]) /
                        static_cast<double>(output_scale);
    QuantizeScale(real, &multipliers[c], &shifts[c]);
  }
}

// TFLite's CalculateActivationRangeQuantized for an int8 output: activation
// 0 none, 1 ReLU, 2 ReLU6; the real bounds quantized as zero_point +
// round(value / scale) in float.
inline void Int8ActivationRange(int32_t activation, float scale,
                                int32_t zero_point, int32_t* act_min,
                                int32_t* act_max) {
  *act_min = -128;
  *act_max = 127;
  if (activation == 0) return;
  if (zero_point > *act_min) *act_min = zero_point;
  if (activation == 2) {
    const float ratio = 6.0f / scale;
    const int32_t six = zero_point + static_cast<int32_t>(roundf(ratio));
    if (six < *act_max) *act_max = six;
  }
}

// One int8 stage: its filter and bias, per-channel fixed-point multipliers,
// the zero points around it and the activation clamp.
struct Int8Stage {
  // a conv: [out, kh, kw, in] (1x1: [out, in]); a depthwise: [kh, kw, C]
  const int8_t* filter;
  const int32_t* bias;         // [out] (null: zeros)
  const int32_t* multiplier;   // [out]
  const int32_t* shift;        // [out]
  int32_t input_zero_point;
  int32_t output_zero_point;
  int32_t act_min;
  int32_t act_max;
};

inline int8_t Requantize(const Int8Stage& stage, int32_t channel,
                         int32_t acc) {
  int32_t v = ScaleByQuantizedMultiplier(acc, stage.multiplier[channel],
                                         stage.shift[channel]) +
              stage.output_zero_point;
  if (v < stage.act_min) v = stage.act_min;
  if (v > stage.act_max) v = stage.act_max;
  return static_cast<int8_t>(v);
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_INT8_STAGE_H_
