// Depthwise convolution input gradient through frozen, per-channel quantized
// weights.
//
// With depth multiplier m (out_c = in_c * m):
//   grad_input[n, iy, ix, c] =
//     sum over (oy, ox, ky, kx) hitting (iy, ix) and j < m of
//     grad_output[n, oy, ox, c*m + j] * scale[c*m + j]
//                                     * filter[0, ky, kx, c*m + j]
// An optional 1-bit mask of the layer's output activation (activation_mask.h,
// in grad_output order) is applied to grad_output as it is read.
#ifndef TFLM_KERNELS_REFERENCE_DEPTHWISE_INPUT_GRAD_H_
#define TFLM_KERNELS_REFERENCE_DEPTHWISE_INPUT_GRAD_H_

#include <stdint.h>

#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/conv_geometry.h"

namespace tflite_tl {
namespace reference {

namespace depthwise_input_grad_internal {

// go[i], through mask bit go_index + i when kMasked (a compile-time switch,
// so the unmasked loops are exactly those of a kernel without masks).
template <bool kMasked>
inline float Grad(const float* go, const uint8_t* mask, int32_t go_index,
                  int32_t i) {
  return (!kMasked || MaskBit(mask, go_index + i)) ? go[i] : 0.0f;
}

template <typename FilterT, bool kMasked>
inline void DepthwiseInputGrad(const ConvGeometry& g, const float* grad_output,
                               const FilterT* filter, const float* scales,
                               float* grad_input, const uint8_t* mask) {
  const int32_t multiplier = g.out_c / g.in_c;
  const int64_t in_size =
      static_cast<int64_t>(g.batch) * g.in_h * g.in_w * g.in_c;
  for (int64_t i = 0; i < in_size; ++i) grad_input[i] = 0.0f;
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
        for (int32_t ky = 0; ky < g.filter_h; ++ky) {
          const int32_t iy = iy0 + ky;
          if (iy < 0 || iy >= g.in_h) continue;
          for (int32_t kx = 0; kx < g.filter_w; ++kx) {
            const int32_t ix = ix0 + kx;
            if (ix < 0 || ix >= g.in_w) continue;
            float* gi =
                grad_input +
                ((static_cast<int64_t>(n) * g.in_h + iy) * g.in_w + ix) *
                    g.in_c;
            const FilterT* fw = filter + (ky * g.filter_w + kx) * g.out_c;
            if (multiplier == 1 && scales != nullptr) {  // the usual case
              for (int32_t c = 0; c < g.in_c; ++c) {
                gi[c] += Grad<kMasked>(go, mask, go_index, c) *
                         (static_cast<float>(fw[c]) * scales[c]);
              }
              continue;
            }
            // Channel-major loops: no division per MAC (slow on MCUs).
            int32_t oc = 0;
            for (int32_t c = 0; c < g.in_c; ++c) {
              float sum = 0.0f;
              for (int32_t j = 0; j < multiplier; ++j, ++oc) {
                const float w = scales != nullptr
                                    ? static_cast<float>(fw[oc]) * scales[oc]
                                    : static_cast<float>(fw[oc]);
                sum += Grad<kMasked>(go, mask, go_index, oc) * w;
              }
              gi[c] += sum;
            }
          }
        }
      }
    }
  }
}

}  // namespace depthwise_input_grad_internal

// grad_output: [batch, out_h, out_w, out_c]
// filter:      [1, filter_h, filter_w, out_c], int8 (or float)
// scales:      [out_c]; null means 1 (float filter)
// grad_input:  [batch, in_h, in_w, in_c], overwritten.
// mask:        packed bits of grad_output's elements, or null (no mask)
template <typename FilterT>
inline void DepthwiseInputGrad(const ConvGeometry& g, const float* grad_output,
                               const FilterT* filter, const float* scales,
                               float* grad_input,
                               const uint8_t* mask = nullptr) {
  if (mask == nullptr) {
    depthwise_input_grad_internal::DepthwiseInputGrad<FilterT, false>(
        g, grad_output, filter, scales, grad_input, nullptr);
  } else {
    depthwise_input_grad_internal::DepthwiseInputGrad<FilterT, true>(
        g, grad_output, filter, scales, grad_input, mask);
  }
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_DEPTHWISE_INPUT_GRAD_H_
