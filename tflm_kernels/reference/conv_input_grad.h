// Convolution input gradient through frozen, per-channel quantized weights.
//
// The frozen backbone keeps its int8 weights (TinyTL: frozen weights cost 8
// bits); the gradient that flows through it is float:
//   grad_input[n, iy, ix, ci] =
//     sum over (oy, ox, ky, kx) with iy = oy*stride_h - pad_top + ky and
//     ix = ox*stride_w - pad_left + kx, and over co, of
//     grad_output[n, oy, ox, co] * scale[co] * filter[co, ky, kx, ci]
// Per-channel int8 filters are symmetric in TFLite (zero point 0), so the
// dequantized weight is scale[co] * filter. Any stride is supported; strides
// 1 and 2 (with odd inputs, where the last row/column may receive no
// gradient) are what the tests cover. An optional 1-bit mask of the layer's
// output activation (activation_mask.h, in grad_output order) is applied to
// grad_output as it is read, so the masked gradient is never stored.
#ifndef TFLM_KERNELS_REFERENCE_CONV_INPUT_GRAD_H_
#define TFLM_KERNELS_REFERENCE_CONV_INPUT_GRAD_H_

#include <stdint.h>

#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/weight_standardize.h"

namespace tflite_tl {
namespace reference {

namespace conv_input_grad_internal {

// kMasked is a compile-time switch, so the unmasked loops are exactly those
// of a kernel without masks (a run-time test costs ~7% on Cortex-M4).
// rows: the filter rows (PointerRows, or StandardizedRows of a raw filter).
template <typename Rows, bool kMasked>
inline void ConvInputGradRows(const ConvGeometry& g, const float* grad_output,
                              const Rows& rows, const float* scales,
                              float* grad_input, const uint8_t* mask) {
  const int64_t in_size =
      static_cast<int64_t>(g.batch) * g.in_h * g.in_w * g.in_c;
  for (int64_t i = 0; i < in_size; ++i) grad_input[i] = 0.0f;
  const int32_t group_in = g.in_c / g.groups;
  const int32_t group_out = g.out_c / g.groups;
  for (int32_t n = 0; n < g.batch; ++n) {
    for (int32_t oy = 0; oy < g.out_h; ++oy) {
      const int32_t iy0 = oy * g.stride_h - g.pad_top;
      for (int32_t ox = 0; ox < g.out_w; ++ox) {
        const int32_t ix0 = ox * g.stride_w - g.pad_left;
        const float* go =
            grad_output +
            ((static_cast<int64_t>(n) * g.out_h + oy) * g.out_w + ox) * g.out_c;
        // Mask bit of go[0] (unused without a mask).
        const int32_t go_index = kMasked ? static_cast<int32_t>(go - grad_output) : 0;
        for (int32_t co = 0; co < g.out_c; ++co) {
          // A masked-out output adds nothing: skip its taps.
          if (kMasked && !MaskBit(mask, go_index + co)) continue;
          const float dy = go[co];
          const float gv = scales != nullptr ? dy * scales[co] : dy;
          const auto f = rows(co);
          const int32_t in_offset = (co / group_out) * group_in;
          for (int32_t ky = 0; ky < g.filter_h; ++ky) {
            const int32_t iy = iy0 + ky;
            if (iy < 0 || iy >= g.in_h) continue;
            for (int32_t kx = 0; kx < g.filter_w; ++kx) {
              const int32_t ix = ix0 + kx;
              if (ix < 0 || ix >= g.in_w) continue;
              float* gi = grad_input +
                          ((static_cast<int64_t>(n) * g.in_h + iy) * g.in_w +
                           ix) * g.in_c + in_offset;
              const int32_t tap = (ky * g.filter_w + kx) * group_in;
              for (int32_t ci = 0; ci < group_in; ++ci) {
                gi[ci] += gv * static_cast<float>(f[tap + ci]);
              }
            }
          }
        }
      }
    }
  }
}

// The masked or the unmasked instantiation, by whether there is a mask.
template <typename Rows>
inline void ConvInputGradDispatch(const ConvGeometry& g,
                                  const float* grad_output, const Rows& rows,
                                  const float* scales, float* grad_input,
                                  const uint8_t* mask) {
  if (mask == nullptr) {
    ConvInputGradRows<Rows, false>(g, grad_output, rows, scales, grad_input,
                                   nullptr);
  } else {
    ConvInputGradRows<Rows, true>(g, grad_output, rows, scales, grad_input,
                                  mask);
  }
}

}  // namespace conv_input_grad_internal

// grad_output: [batch, out_h, out_w, out_c]
// filter:      [out_c, filter_h, filter_w, in_c / groups], int8 (or float)
// scales:      [out_c] per-output-channel scales; null means 1 (float filter)
// grad_input:  [batch, in_h, in_w, in_c], overwritten.
// mask:        packed bits of grad_output's elements, or null (no mask)
template <typename FilterT>
inline void ConvInputGrad(const ConvGeometry& g, const float* grad_output,
                          const FilterT* filter, const float* scales,
                          float* grad_input, const uint8_t* mask = nullptr) {
  conv_input_grad_internal::ConvInputGradDispatch(
      g, grad_output, PointerRows<FilterT>{filter, FilterFanIn(g)}, scales,
      grad_input, mask);
}

// ConvInputGrad through WeightStandardize(filter) of a raw float filter, its
// values computed on the fly from `stats` (WeightStandardizeStats): bit for
// bit ConvInputGrad<float> through the standardised filter, without it.
inline void ConvInputGradStandardized(const ConvGeometry& g,
                                      const float* grad_output,
                                      const float* filter, const float* stats,
                                      float* grad_input,
                                      const uint8_t* mask = nullptr) {
  conv_input_grad_internal::ConvInputGradDispatch(
      g, grad_output, StandardizedRows{filter, stats, FilterFanIn(g)},
      nullptr, grad_input, mask);
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_CONV_INPUT_GRAD_H_
