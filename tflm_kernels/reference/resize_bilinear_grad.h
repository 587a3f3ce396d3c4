// Bilinear resize gradient: the exact adjoint of TFLite's float
// RESIZE_BILINEAR reference (tensorflow/lite/kernels/internal/reference/
// resize_bilinear.h), with the same index and weight arithmetic:
//   scale = in / out, or (in - 1) / (out - 1) with align_corners (out > 1)
//   src   = (dst + 0.5) * scale - 0.5 with half_pixel_centers (TF2's
//           tf.image.resize, Keras UpSampling2D(interpolation="bilinear")),
//           else dst * scale
//   lo = max(floor(src), 0), hi = min(ceil(src), in - 1), w = src - lo
// The forward sums input[lo]*(1 - w) + input[hi]*w in both axes; the adjoint
// adds grad_output times the same four weights into those four inputs.
#ifndef TFLM_KERNELS_REFERENCE_RESIZE_BILINEAR_GRAD_H_
#define TFLM_KERNELS_REFERENCE_RESIZE_BILINEAR_GRAD_H_

#include <math.h>
#include <stdint.h>

namespace tflite_tl {
namespace reference {

// TFLite's ResizeBilinear scale of one axis.
inline float ResizeScale(int32_t in_size, int32_t out_size, bool align_corners) {
  if (align_corners && out_size > 1) {
    return static_cast<float>(in_size - 1) / static_cast<float>(out_size - 1);
  }
  return static_cast<float>(in_size) / static_cast<float>(out_size);
}

// TFLite's ComputeInterpolationValues: source position, lower and upper
// input index of output index `value`.
inline void ResizeSource(int32_t value, float scale, bool half_pixel_centers,
                         int32_t in_size, float* source, int32_t* lower,
                         int32_t* upper) {
  *source = half_pixel_centers
                ? (static_cast<float>(value) + 0.5f) * scale - 0.5f
                : static_cast<float>(value) * scale;
  const int32_t floor_value = static_cast<int32_t>(floorf(*source));
  *lower = floor_value > 0 ? floor_value : 0;
  const int32_t ceil_value = static_cast<int32_t>(ceilf(*source));
  *upper = ceil_value < in_size - 1 ? ceil_value : in_size - 1;
}

// grad_output: [batch, out_h, out_w, channels]
// grad_input:  [batch, in_h, in_w, channels], overwritten.
// TFLite requires !(align_corners && half_pixel_centers).
inline void ResizeBilinearGrad(int32_t batch, int32_t in_h, int32_t in_w,
                               int32_t channels, int32_t out_h, int32_t out_w,
                               bool align_corners, bool half_pixel_centers,
                               const float* grad_output, float* grad_input) {
  const int64_t in_size = static_cast<int64_t>(batch) * in_h * in_w * channels;
  for (int64_t i = 0; i < in_size; ++i) grad_input[i] = 0.0f;
  const float scale_h = ResizeScale(in_h, out_h, align_corners);
  const float scale_w = ResizeScale(in_w, out_w, align_corners);
  for (int32_t n = 0; n < batch; ++n) {
    for (int32_t y = 0; y < out_h; ++y) {
      float source_y;
      int32_t y0, y1;
      ResizeSource(y, scale_h, half_pixel_centers, in_h, &source_y, &y0, &y1);
      const float wy = source_y - static_cast<float>(y0);
      for (int32_t x = 0; x < out_w; ++x) {
        float source_x;
        int32_t x0, x1;
        ResizeSource(x, scale_w, half_pixel_centers, in_w, &source_x, &x0, &x1);
        const float wx = source_x - static_cast<float>(x0);
        const float* go =
            grad_output +
            ((static_cast<int64_t>(n) * out_h + y) * out_w + x) * channels;
        const int64_t row0 = (static_cast<int64_t>(n) * in_h + y0) * in_w;
        const int64_t row1 = (static_cast<int64_t>(n) * in_h + y1) * in_w;
        float* g00 = grad_input + (row0 + x0) * channels;
        float* g10 = grad_input + (row1 + x0) * channels;
        float* g01 = grad_input + (row0 + x1) * channels;
        float* g11 = grad_input + (row1 + x1) * channels;
        for (int32_t c = 0; c < channels; ++c) {
          // The forward's products input * (1 - wy) * (1 - wx), ... in the
          // same association.
          g00[c] += go[c] * (1 - wy) * (1 - wx);
          g10[c] += go[c] * wy * (1 - wx);
          g01[c] += go[c] * (1 - wy) * wx;
          g11[c] += go[c] * wy * wx;
        }
      }
    }
  }
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_RESIZE_BILINEAR_GRAD_H_
