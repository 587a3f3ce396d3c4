// Float depthwise convolution forward with a fused ReLU / ReLU6 and, in the
// same pass, the 1-bit mask of the activation's linear range.
//
// With depth multiplier m (out_c = in_c * m):
//   y[n, oy, ox, c*m + j] = act(bias[c*m + j] + sum over (ky, kx) in the
//       input of x[n, oy*sh - pad_top + ky, ox*sw - pad_left + kx, c]
//                 * filter[0, ky, kx, c*m + j])
// summed ky-major, then kx, with the bias added last (the order of TFLite's
// float reference). The mask (activation_mask.h packing) has bit i set iff
// lower < y[i] < upper on the activated value, exactly as
// PackActivationMask on y: lower 0, upper +inf for ReLU, 6 for ReLU6.
//
// The training graph's forward depthwise layers run on this kernel instead
// of TFLM's DEPTHWISE_CONV_2D, whose Prepare keeps two int32 per channel of
// persistent arena (requantization multipliers and shifts) even for float
// models; this kernel keeps none, and its mask output replaces a separate
// TL_RELU_MASK op.
//
// DepthwiseConvInt8 is the int8 forward of an int8 training graph: TFLM's
// int8 DEPTHWISE_CONV_2D value for value (int8_stage.h), the multipliers
// passed in per invoke, the mask written on the int8 output as TL_RELU_MASK
// writes it.
#ifndef TFLM_KERNELS_REFERENCE_DEPTHWISE_CONV_H_
#define TFLM_KERNELS_REFERENCE_DEPTHWISE_CONV_H_

#include <math.h>
#include <stdint.h>

#include "tflm_kernels/reference/activation.h"
#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/int8_stage.h"

namespace tflite_tl {
namespace reference {

// bias may be null (zeros); mask may be null (not written) and needs an
// activation (kRelu or kRelu6).
inline void DepthwiseConv(const ConvGeometry& g, const float* input,
                          const float* filter, const float* bias,
                          Activation act, float* output, uint8_t* mask) {
  const int32_t multiplier = g.out_c / g.in_c;
  for (int32_t n = 0; n < g.batch; ++n) {
    for (int32_t oy = 0; oy < g.out_h; ++oy) {
      const int32_t iy0 = oy * g.stride_h - g.pad_top;
      for (int32_t ox = 0; ox < g.out_w; ++ox) {
        const int32_t ix0 = ox * g.stride_w - g.pad_left;
        float* y = output +
                   ((static_cast<int64_t>(n) * g.out_h + oy) * g.out_w + ox) *
                       g.out_c;
        for (int32_t c = 0; c < g.in_c; ++c) {
          for (int32_t j = 0; j < multiplier; ++j) {
            const int32_t oc = c * multiplier + j;
            float total = 0.0f;
            for (int32_t ky = 0; ky < g.filter_h; ++ky) {
              const int32_t iy = iy0 + ky;
              if (iy < 0 || iy >= g.in_h) continue;
              for (int32_t kx = 0; kx < g.filter_w; ++kx) {
                const int32_t ix = ix0 + kx;
                if (ix < 0 || ix >= g.in_w) continue;
                const float xv =
                    input[((static_cast<int64_t>(n) * g.in_h + iy) * g.in_w +
                           ix) * g.in_c + c];
                total += xv * filter[(static_cast<int64_t>(ky) * g.filter_w +
                                      kx) * g.out_c + oc];
              }
            }
            y[oc] = Activate(act, total + (bias != nullptr ? bias[oc] : 0.0f));
          }
        }
      }
    }
  }
  if (mask != nullptr && act != Activation::kNone) {
    const int64_t size =
        static_cast<int64_t>(g.batch) * g.out_h * g.out_w * g.out_c;
    PackActivationMask<float, float>(
        output, static_cast<int32_t>(size), 0.0f,
        act == Activation::kRelu6 ? 6.0f : INFINITY, mask);
  }
}

// stage: the filter [1, kh, kw, Co] int8, bias int32 (may be null),
// per-channel multipliers and shifts, zero points, activation clamp; mask as
// ConvInt8's.
inline void DepthwiseConvInt8(const ConvGeometry& g, const int8_t* input,
                              const Int8Stage& stage, int8_t* output,
                              uint8_t* mask, int32_t mask_lower,
                              int32_t mask_upper) {
  const int32_t multiplier = g.out_c / g.in_c;
  for (int32_t n = 0; n < g.batch; ++n) {
    for (int32_t oy = 0; oy < g.out_h; ++oy) {
      const int32_t iy0 = oy * g.stride_h - g.pad_top;
      for (int32_t ox = 0; ox < g.out_w; ++ox) {
        const int32_t ix0 = ox * g.stride_w - g.pad_left;
        int8_t* y = output +
                    ((static_cast<int64_t>(n) * g.out_h + oy) * g.out_w + ox) *
                        g.out_c;
        for (int32_t c = 0; c < g.in_c; ++c) {
          for (int32_t j = 0; j < multiplier; ++j) {
            const int32_t oc = c * multiplier + j;
            int32_t acc = stage.bias != nullptr ? stage.bias[oc] : 0;
            for (int32_t ky = 0; ky < g.filter_h; ++ky) {
              const int32_t iy = iy0 + ky;
              if (iy < 0 || iy >= g.in_h) continue;
              for (int32_t kx = 0; kx < g.filter_w; ++kx) {
                const int32_t ix = ix0 + kx;
                if (ix < 0 || ix >= g.in_w) continue;
                const int32_t xv = input[((static_cast<int64_t>(n) * g.in_h +
                                           iy) * g.in_w + ix) * g.in_c + c];
                acc += static_cast<int32_t>(
                           stage.filter[(static_cast<int64_t>(ky) *
                                             g.filter_w + kx) * g.out_c + oc]) *
                       (xv - stage.input_zero_point);
              }
            }
            y[oc] = Requantize(stage, oc, acc);
          }
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

#endif  // TFLM_KERNELS_REFERENCE_DEPTHWISE_CONV_H_
