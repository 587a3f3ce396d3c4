// Float convolution forward (grouped too) with a fused ReLU / ReLU6 and, in
// the same pass, the 1-bit mask of the activation's linear range.
//
// With an OHWI filter [Co, kh, kw, Ci/g] and G = g.groups groups (output
// channel oc reads the input channels of its group, base (oc / (Co/G)) *
// (Ci/G)):
//   y[n, oy, ox, oc] = act(bias[oc] + sum over (ky, kx, ci) in the input of
//       x[n, oy*sh - pad_top + ky, ox*sw - pad_left + kx, base + ci]
//       * filter[oc, ky, kx, ci])
// summed ky-major, then kx, then ci, with the bias added last (the order of
// TFLite's float reference CONV_2D). The mask (activation_mask.h packing)
// has bit i set iff 0 < y[i] < upper (6 for ReLU6, +inf for ReLU), exactly
// as PackActivationMask on y.
//
// The training graph's float convolutions run on this kernel instead of
// TFLM's CONV_2D, whose Prepare keeps two int32 per output channel of
// persistent arena (requantization multipliers and shifts) even for float
// models. A weight-standardised conv (TinyTL's lite residual branch) runs
// WeightStandardize (weight_standardize.h) on its raw filter first, in the
// same op, and convolves with the result.
//
// ConvInt8 is the int8 forward of the same convolutions in an int8 training
// graph: TFLM's int8 CONV_2D value for value (int8_stage.h: int32
// accumulation over the in-bounds taps, then the per-channel fixed-point
// requantization and the activation clamp), with the multipliers passed in
// per invoke rather than kept per channel in the persistent arena, and the
// mask of the clamped range written in the same op, as TL_RELU_MASK writes
// it on the int8 output.
#ifndef TFLM_KERNELS_REFERENCE_CONV_H_
#define TFLM_KERNELS_REFERENCE_CONV_H_

#include <stdint.h>

#include "tflm_kernels/reference/activation.h"
#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/int8_stage.h"
#include "tflm_kernels/reference/weight_standardize.h"

namespace tflite_tl {
namespace reference {

namespace conv_internal {

// The float convolution over the filter rows `rows` (PointerRows, or
// StandardizedRows of a raw filter).
template <typename Rows>
inline void ConvRows(const ConvGeometry& g, const float* input,
                     const Rows& rows, const float* bias, Activation act,
                     float* output, uint8_t* mask) {
  const int32_t group_in = g.in_c / g.groups;
  const int32_t group_out = g.out_c / g.groups;
  for (int32_t n = 0; n < g.batch; ++n) {
    for (int32_t oy = 0; oy < g.out_h; ++oy) {
      const int32_t iy0 = oy * g.stride_h - g.pad_top;
      for (int32_t ox = 0; ox < g.out_w; ++ox) {
        const int32_t ix0 = ox * g.stride_w - g.pad_left;
        float* y = output +
                   ((static_cast<int64_t>(n) * g.out_h + oy) * g.out_w + ox) *
                       g.out_c;
        for (int32_t oc = 0; oc < g.out_c; ++oc) {
          const int32_t base = (oc / group_out) * group_in;
          const auto w = rows(oc);
          float total = 0.0f;
          for (int32_t ky = 0; ky < g.filter_h; ++ky) {
            const int32_t iy = iy0 + ky;
            if (iy < 0 || iy >= g.in_h) continue;
            for (int32_t kx = 0; kx < g.filter_w; ++kx) {
              const int32_t ix = ix0 + kx;
              if (ix < 0 || ix >= g.in_w) continue;
              const float* xv =
                  input +
                  ((static_cast<int64_t>(n) * g.in_h + iy) * g.in_w + ix) *
                      g.in_c + base;
              const int32_t tap = (ky * g.filter_w + kx) * group_in;
              for (int32_t ci = 0; ci < group_in; ++ci) {
                total += xv[ci] * w[tap + ci];
              }
            }
          }
          y[oc] = Activate(act, total + (bias != nullptr ? bias[oc] : 0.0f));
        }
      }
    }
  }
  if (mask != nullptr && act != Activation::kNone) {
    const int64_t size =
        static_cast<int64_t>(g.batch) * g.out_h * g.out_w * g.out_c;
    PackActivationMask<float, float>(output, static_cast<int32_t>(size), 0.0f,
                                     ActivationUpper(act), mask);
  }
}

}  // namespace conv_internal

// bias may be null (zeros); mask may be null (not written) and needs an
// activation (kRelu or kRelu6).
inline void Conv(const ConvGeometry& g, const float* input,
                 const float* filter, const float* bias, Activation act,
                 float* output, uint8_t* mask) {
  conv_internal::ConvRows(g, input, PointerRows<float>{filter, FilterFanIn(g)},
                          bias, act, output, mask);
}

// Conv with WeightStandardize(filter), the standardised values computed on
// the fly from `stats` (WeightStandardizeStats of the raw filter): the same
// output, bit for bit, as WeightStandardize into a filter-sized buffer and
// then Conv, with 3 floats per output channel instead of that buffer.
inline void ConvStandardized(const ConvGeometry& g, const float* input,
                             const float* filter, const float* stats,
                             const float* bias, Activation act, float* output,
                             uint8_t* mask) {
  conv_internal::ConvRows(g, input,
                          StandardizedRows{filter, stats, FilterFanIn(g)},
                          bias, act, output, mask);
}

// stage: the filter OHWI [Co, kh, kw, Ci/g] int8, bias int32 (may be null),
// per-channel multipliers and shifts, the input and output zero points and
// the activation clamp. mask (may be null): bit i set iff mask_lower <
// y[i] < mask_upper (Int8MaskBounds of the output's quantization).
inline void ConvInt8(const ConvGeometry& g, const int8_t* input,
                     const Int8Stage& stage, int8_t* output, uint8_t* mask,
                     int32_t mask_lower, int32_t mask_upper) {
  const int32_t group_in = g.in_c / g.groups;
  const int32_t group_out = g.out_c / g.groups;
  const int32_t row = g.filter_h * g.filter_w * group_in;
  for (int32_t n = 0; n < g.batch; ++n) {
    for (int32_t oy = 0; oy < g.out_h; ++oy) {
      const int32_t iy0 = oy * g.stride_h - g.pad_top;
      for (int32_t ox = 0; ox < g.out_w; ++ox) {
        const int32_t ix0 = ox * g.stride_w - g.pad_left;
        int8_t* y = output +
                    ((static_cast<int64_t>(n) * g.out_h + oy) * g.out_w + ox) *
                        g.out_c;
        for (int32_t oc = 0; oc < g.out_c; ++oc) {
          const int32_t base = (oc / group_out) * group_in;
          const int8_t* w = stage.filter + static_cast<int64_t>(oc) * row;
          int32_t acc = stage.bias != nullptr ? stage.bias[oc] : 0;
          for (int32_t ky = 0; ky < g.filter_h; ++ky) {
            const int32_t iy = iy0 + ky;
            if (iy < 0 || iy >= g.in_h) continue;
            for (int32_t kx = 0; kx < g.filter_w; ++kx) {
              const int32_t ix = ix0 + kx;
              if (ix < 0 || ix >= g.in_w) continue;
              const int8_t* xv =
                  input +
                  ((static_cast<int64_t>(n) * g.in_h + iy) * g.in_w + ix) *
                      g.in_c + base;
              const int8_t* wv = w + (ky * g.filter_w + kx) * group_in;
              for (int32_t ci = 0; ci < group_in; ++ci) {
                acc += static_cast<int32_t>(wv[ci]) *
                       (static_cast<int32_t>(xv[ci]) - stage.input_zero_point);
              }
            }
          }
          y[oc] = Requantize(stage, oc, acc);
        }
      }
    }
  }
  if (mask != nullptr) {
    const int64_t size =
        static_cast<int64_t>(g.batch) * g.out_h * g.out_w * g.out_c;
    PackActivationMask<int8_t, int32_t>(output, static_cast<int32_t>(size),
                                        mask_lower, mask_upper, mask);
  }
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_CONV_H_
