// Average-pool gradient: the adjoint of TFLite's AVERAGE_POOL_2D (and TF's
// avg_pool), whose count excludes padding: each output averages the input
// positions its window covers inside the image.
//   grad_input[n, iy, ix, c] += grad_output[n, oy, ox, c] / count(oy, ox)
// for every window (oy, ox) containing (iy, ix). Covers global pooling
// (filter = input size, VALID: one output) and non-overlapping and
// overlapping windows, SAME or VALID. With an addend (the gradient that
// another consumer of the pool's input already produced) the result is
// addend + that gradient, bit for bit what an ADD of the two would give, so
// a fan-out's sum needs no third tensor.
#ifndef TFLM_KERNELS_REFERENCE_AVGPOOL_GRAD_H_
#define TFLM_KERNELS_REFERENCE_AVGPOOL_GRAD_H_

#include <stdint.h>

#include "tflm_kernels/reference/conv_geometry.h"

namespace tflite_tl {
namespace reference {

// g: pooling geometry (in_c == out_c == channels; filter = pool window).
// grad_output: [batch, out_h, out_w, channels]
// grad_input:  [batch, in_h, in_w, channels], overwritten.
// addend:      [batch, in_h, in_w, channels] or null; may not alias
//              grad_input.
inline void AveragePoolGrad(const ConvGeometry& g, const float* grad_output,
                            float* grad_input, const float* addend = nullptr) {
  const int32_t c_count = g.in_c;
  const int64_t in_size =
      static_cast<int64_t>(g.batch) * g.in_h * g.in_w * c_count;
  for (int64_t i = 0; i < in_size; ++i) grad_input[i] = 0.0f;
  for (int32_t n = 0; n < g.batch; ++n) {
    for (int32_t oy = 0; oy < g.out_h; ++oy) {
      // The window clipped to the image, as TFLite's reference computes it.
      const int32_t iy0 = oy * g.stride_h - g.pad_top;
      const int32_t y_begin = iy0 < 0 ? -iy0 : 0;
      const int32_t y_end =
          g.filter_h < g.in_h - iy0 ? g.filter_h : g.in_h - iy0;
      for (int32_t ox = 0; ox < g.out_w; ++ox) {
        const int32_t ix0 = ox * g.stride_w - g.pad_left;
        const int32_t x_begin = ix0 < 0 ? -ix0 : 0;
        const int32_t x_end =
            g.filter_w < g.in_w - ix0 ? g.filter_w : g.in_w - ix0;
        const int32_t count = (y_end - y_begin) * (x_end - x_begin);
        if (count <= 0) continue;  // no input under the window
        const float count_f = static_cast<float>(count);
        const float* go =
            grad_output +
            ((static_cast<int64_t>(n) * g.out_h + oy) * g.out_w + ox) * c_count;
        for (int32_t c = 0; c < c_count; ++c) {
          const float share = go[c] / count_f;
          for (int32_t ky = y_begin; ky < y_end; ++ky) {
            const int64_t row =
                (static_cast<int64_t>(n) * g.in_h + iy0 + ky) * g.in_w;
            for (int32_t kx = x_begin; kx < x_end; ++kx) {
              grad_input[(row + ix0 + kx) * c_count + c] += share;
            }
          }
        }
      }
    }
  }
  if (addend != nullptr) {
    // Last, so each element is addend + (its pooled gradient): ADD's value.
    for (int64_t i = 0; i < in_size; ++i) grad_input[i] += addend[i];
  }
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_AVGPOOL_GRAD_H_
