// Input gradient through a frozen int8 inverted-residual block, streamed by
// rows: the chain project^T -> depthwise^T -> [expand^T] of
// conv_input_grad.h / depthwise_input_grad.h without its two expanded-width
// float maps.
//
//   dz = project^T(mask_out . dy)       [N, Ho, Wo, E]  (1x1, per pixel)
//   de = depthwise^T(mask_dw . dz)      [N, H, W, E]
//   dx = expand^T(mask_exp . de)        [N, H, W, Cin]  (dx = de without expand)
//
// Bit-identical to the three ops: every float sum adds the same terms in the
// same order. The 1x1 stages are per pixel. In the depthwise, an input
// element sums its contributions in (oy, ox) raster order, so input row iy is
// complete once the output rows that touch it have been visited in ascending
// order; those are at most ceil(kh / stride) consecutive rows, kept in a ring
// of dz rows. Each finished row of de goes through expand^T into dx at once.
// Scratch: (ring rows * Wo + [W]) * E floats (InvertedResidualInputGradScratchFloats).
//
// Masked-out elements are skipped (not multiplied by 0), as in the chain.
// Depth multiplier 1; all filters int8, symmetric per output channel.
#ifndef TFLM_KERNELS_REFERENCE_INVERTED_RESIDUAL_INPUT_GRAD_H_
#define TFLM_KERNELS_REFERENCE_INVERTED_RESIDUAL_INPUT_GRAD_H_

#include <stdint.h>

#include "tflm_kernels/reference/activation_mask.h"

namespace tflite_tl {
namespace reference {

struct InvertedResidualInputGradShape {
  int32_t batch;
  int32_t in_h, in_w, in_c;  // the block's input (in_c = expanded_c without expand)
  int32_t expanded_c;
  int32_t out_h, out_w, out_c;
  int32_t filter_h, filter_w;  // the depthwise window
  int32_t stride_h, stride_w;
  int32_t pad_top, pad_left;
  bool has_expand;
};

// One frozen 1x1 or depthwise filter and its per-output-channel scales.
struct Int8Filter {
  const int8_t* filter;
  const float* scales;
};

// The packed 1-bit masks (activation_mask.h), each null when absent:
// grad_output's own (a downstream activation's), the depthwise output's and
// the expanded map's.
struct InvertedResidualGradMasks {
  const uint8_t* grad_output;
  const uint8_t* depthwise;
  const uint8_t* expand;
};

// Rows of dz the depthwise window needs at once.
inline int32_t InvertedResidualGradRingRows(
    const InvertedResidualInputGradShape& s) {
  const int32_t rows = (s.filter_h - 1) / s.stride_h + 1;
  return rows < s.out_h ? rows : s.out_h;
}

inline int32_t InvertedResidualInputGradScratchFloats(
    const InvertedResidualInputGradShape& s) {
  return InvertedResidualGradRingRows(s) * s.out_w * s.expanded_c +
         (s.has_expand ? s.in_w * s.expanded_c : 0);
}

namespace inverted_residual_input_grad_internal {

// kMasked is a compile-time switch (as in conv_input_grad.h), so the
// unmasked loops test nothing per element.
template <bool kMasked>
inline bool Kept(const uint8_t* mask, int64_t index) {
  return !kMasked || MaskBit(mask, static_cast<int32_t>(index));
}

// ConvInputGrad of one pixel through a [out_c, 1, 1, in_c] filter: the
// terms of conv_input_grad.h in its order (co ascending).
template <bool kMasked>
inline void PointwiseInputGrad(const float* go, const Int8Filter& f,
                               int32_t out_c, int32_t in_c, float* gi,
                               const uint8_t* mask, int64_t mask_index) {
  for (int32_t ci = 0; ci < in_c; ++ci) gi[ci] = 0.0f;
  for (int32_t co = 0; co < out_c; ++co) {
    if (!Kept<kMasked>(mask, mask_index + co)) continue;
    const float gv = go[co] * f.scales[co];
    const int8_t* fw = f.filter + static_cast<int64_t>(co) * in_c;
    for (int32_t ci = 0; ci < in_c; ++ci) {
      gi[ci] += gv * static_cast<float>(fw[ci]);
    }
  }
}

// Adds output row oy's depthwise contributions to input row iy (de_row,
// [in_w, E]), in ox order, as depthwise_input_grad.h adds them.
template <bool kMasked>
inline void AddDepthwiseRow(const InvertedResidualInputGradShape& s,
                            const float* dz_row, int32_t ky,
                            const Int8Filter& dw, const uint8_t* mask,
                            int64_t mask_row, float* de_row) {
  const int32_t e_c = s.expanded_c;
  for (int32_t ox = 0; ox < s.out_w; ++ox) {
    const int32_t ix0 = ox * s.stride_w - s.pad_left;
    const float* go = dz_row + static_cast<int64_t>(ox) * e_c;
    const int64_t go_index = mask_row + static_cast<int64_t>(ox) * e_c;
    for (int32_t kx = 0; kx < s.filter_w; ++kx) {
      const int32_t ix = ix0 + kx;
      if (ix < 0 || ix >= s.in_w) continue;
      float* gi = de_row + static_cast<int64_t>(ix) * e_c;
      const int8_t* fw = dw.filter + (ky * s.filter_w + kx) * e_c;
      for (int32_t c = 0; c < e_c; ++c) {
        if (!Kept<kMasked>(mask, go_index + c)) continue;
        gi[c] += go[c] * (static_cast<float>(fw[c]) * dw.scales[c]);
      }
    }
  }
}

// The two instantiations, chosen once per call by whether the mask exists.
inline void PointwiseInputGrad(const float* go, const Int8Filter& f,
                               int32_t out_c, int32_t in_c, float* gi,
                               const uint8_t* mask, int64_t mask_index) {
  if (mask == nullptr) {
    PointwiseInputGrad<false>(go, f, out_c, in_c, gi, nullptr, 0);
  } else {
    PointwiseInputGrad<true>(go, f, out_c, in_c, gi, mask, mask_index);
  }
}

inline void AddDepthwiseRow(const InvertedResidualInputGradShape& s,
                            const float* dz_row, int32_t ky,
                            const Int8Filter& dw, const uint8_t* mask,
                            int64_t mask_row, float* de_row) {
  if (mask == nullptr) {
    AddDepthwiseRow<false>(s, dz_row, ky, dw, nullptr, 0, de_row);
  } else {
    AddDepthwiseRow<true>(s, dz_row, ky, dw, mask, mask_row, de_row);
  }
}

}  // namespace inverted_residual_input_grad_internal

namespace inverted_residual_input_grad_internal {

// The streamed chain of InvertedResidualInputGrad. on_dz_row(n, oy, dz_row)
// sees every row of the depthwise output gradient dz ([out_w, E], before the
// depthwise mask) exactly once, in (n, oy) order, right after it is computed
// and before any input row reads it: an op that also needs dz (the depthwise
// weight and bias gradients, inverted_residual_update.h) accumulates from it
// there. A no-op callback inlines away.
template <typename OnDzRow>
inline void StreamInputGrad(const InvertedResidualInputGradShape& s,
                            const float* grad_output, const Int8Filter& project,
                            const Int8Filter& depthwise,
                            const Int8Filter& expand,
                            const InvertedResidualGradMasks& masks,
                            float* grad_input, float* scratch,
                            OnDzRow&& on_dz_row) {
  const int32_t e_c = s.expanded_c;
  const int32_t ring_rows = InvertedResidualGradRingRows(s);
  const int64_t dz_row_size = static_cast<int64_t>(s.out_w) * e_c;
  float* ring = scratch;
  float* de_scratch = scratch + ring_rows * dz_row_size;
  for (int32_t n = 0; n < s.batch; ++n) {
    int32_t next_oy = 0;  // the next dz row to compute into the ring
    for (int32_t iy = 0; iy < s.in_h; ++iy) {
      // Output rows whose window covers iy: oy*stride - pad_top + ky = iy.
      const int32_t top = iy + s.pad_top;
      int32_t oy_first = top - s.filter_h + 1;
      oy_first = oy_first <= 0 ? 0 : (oy_first + s.stride_h - 1) / s.stride_h;
      int32_t oy_last = top / s.stride_h;
      if (oy_last >= s.out_h) oy_last = s.out_h - 1;
      for (; next_oy <= oy_last; ++next_oy) {
        float* dz_row = ring + (next_oy % ring_rows) * dz_row_size;
        const int64_t pixel0 =
            (static_cast<int64_t>(n) * s.out_h + next_oy) * s.out_w;
        for (int32_t ox = 0; ox < s.out_w; ++ox) {
          const int64_t pixel = pixel0 + ox;
          PointwiseInputGrad(grad_output + pixel * s.out_c, project, s.out_c,
                             e_c, dz_row + ox * e_c, masks.grad_output,
                             pixel * s.out_c);
        }
        on_dz_row(n, next_oy, static_cast<const float*>(dz_row));
      }
      const int64_t in_pixel0 =
          (static_cast<int64_t>(n) * s.in_h + iy) * s.in_w;
      float* de_row = s.has_expand ? de_scratch : grad_input + in_pixel0 * e_c;
      for (int64_t i = 0; i < static_cast<int64_t>(s.in_w) * e_c; ++i) {
        de_row[i] = 0.0f;
      }
      for (int32_t oy = oy_first; oy <= oy_last; ++oy) {
        const int32_t ky = top - oy * s.stride_h;
        AddDepthwiseRow(s, ring + (oy % ring_rows) * dz_row_size, ky,
                        depthwise, masks.depthwise,
                        (static_cast<int64_t>(n) * s.out_h + oy) * dz_row_size,
                        de_row);
      }
      if (!s.has_expand) continue;
      for (int32_t ix = 0; ix < s.in_w; ++ix) {
        const int64_t pixel = in_pixel0 + ix;
        PointwiseInputGrad(de_row + static_cast<int64_t>(ix) * e_c, expand,
                           e_c, s.in_c, grad_input + pixel * s.in_c,
                           masks.expand, pixel * e_c);
      }
    }
  }
}

}  // namespace inverted_residual_input_grad_internal

// grad_output: [batch, out_h, out_w, out_c], the project output's gradient
// project:     [out_c, 1, 1, E]; depthwise: [1, kh, kw, E];
// expand:      [E, 1, 1, in_c] (ignored without expand)
// grad_input:  [batch, in_h, in_w, in_c], overwritten
// scratch:     InvertedResidualInputGradScratchFloats(s) floats
inline void InvertedResidualInputGrad(const InvertedResidualInputGradShape& s,
                                      const float* grad_output,
                                      const Int8Filter& project,
                                      const Int8Filter& depthwise,
                                      const Int8Filter& expand,
                                      const InvertedResidualGradMasks& masks,
                                      float* grad_input, float* scratch) {
  inverted_residual_input_grad_internal::StreamInputGrad(
      s, grad_output, project, depthwise, expand, masks, grad_input, scratch,
      [](int32_t, int32_t, const float*) {});
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_INVERTED_RESIDUAL_INPUT_GRAD_H_
