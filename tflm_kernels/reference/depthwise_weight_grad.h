// Depthwise convolution weight gradient.
//
// With depth multiplier m, output channel oc = c * m + j reads input
// channel c = oc / m:
//   grad_filter[0, ky, kx, oc] =
//     sum_{n, oy, ox} grad_output[n, oy, ox, oc]
//                     * input[n, oy*stride_h - pad_top + ky,
//                               ox*stride_w - pad_left + kx, oc / m]
// The input may be a float tensor or the int8 tensor saved by a quantized
// forward pass (see activation_quantization.h).
#ifndef TFLM_KERNELS_REFERENCE_DEPTHWISE_WEIGHT_GRAD_H_
#define TFLM_KERNELS_REFERENCE_DEPTHWISE_WEIGHT_GRAD_H_

#include <stdint.h>

#include "tflm_kernels/reference/activation_quantization.h"
#include "tflm_kernels/reference/conv_geometry.h"

namespace tflite_tl {
namespace reference {

// g.out_c must be g.in_c * depth_multiplier.
// input:       [batch, in_h, in_w, in_c], float, or int8 with `quant`
// grad_output: [batch, out_h, out_w, out_c]
// grad_filter: [1, filter_h, filter_w, out_c], overwritten.
template <typename InputT>
inline void DepthwiseWeightGrad(const ConvGeometry& g, const InputT* input,
                                const ActivationQuantization& quant,
                                const float* grad_output, float* grad_filter) {
  const int32_t multiplier = g.out_c / g.in_c;
  const int32_t size = g.filter_h * g.filter_w * g.out_c;
  for (int32_t i = 0; i < size; ++i) grad_filter[i] = 0.0f;
  for (int32_t n = 0; n < g.batch; ++n) {
    for (int32_t oy = 0; oy < g.out_h; ++oy) {
      const int32_t iy0 = oy * g.stride_h - g.pad_top;
      for (int32_t ox = 0; ox < g.out_w; ++ox) {
        const int32_t ix0 = ox * g.stride_w - g.pad_left;
        const float* go =
            grad_output +
            ((static_cast<int64_t>(n) * g.out_h + oy) * g.out_w + ox) * g.out_c;
        for (int32_t ky = 0; ky < g.filter_h; ++ky) {
          const int32_t iy = iy0 + ky;
          if (iy < 0 || iy >= g.in_h) continue;
          for (int32_t kx = 0; kx < g.filter_w; ++kx) {
            const int32_t ix = ix0 + kx;
            if (ix < 0 || ix >= g.in_w) continue;
            const InputT* in =
                input +
                ((static_cast<int64_t>(n) * g.in_h + iy) * g.in_w + ix) *
                    g.in_c;
            float* gw = grad_filter + (ky * g.filter_w + kx) * g.out_c;
            if (multiplier == 1) {  // the usual case (MobileNet-style)
              for (int32_t c = 0; c < g.in_c; ++c) {
                gw[c] += go[c] * Centred(in[c], quant.zero_point);
              }
              continue;
            }
            // Channel-major loops: no division per MAC (slow on MCUs).
            int32_t oc = 0;
            for (int32_t c = 0; c < g.in_c; ++c) {
              const float x = Centred(in[c], quant.zero_point);
              for (int32_t j = 0; j < multiplier; ++j, ++oc) {
                gw[oc] += go[oc] * x;
              }
            }
          }
        }
      }
    }
  }
  ApplyScale(quant, size, grad_filter);
}

// Float activations.
inline void DepthwiseWeightGrad(const ConvGeometry& g, const float* input,
                                const float* grad_output, float* grad_filter) {
  DepthwiseWeightGrad<float>(g, input, kNoQuantization, grad_output,
                             grad_filter);
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_DEPTHWISE_WEIGHT_GRAD_H_
