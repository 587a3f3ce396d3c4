// Input gradient through a frozen int8 inverted-residual block, streamed:
// the chain project^T -> depthwise^T -> [expand^T] of conv_input_grad.h /
// depthwise_input_grad.h without its two expanded-width float maps.
//
//   dz = project^T(mask_out . dy)       [N, Ho, Wo, E]  (1x1, per pixel)
//   de = depthwise^T(mask_dw . dz)      [N, H, W, E]
//   dx = expand^T(mask_exp . de)        [N, H, W, Cin]  (dx = de without expand)
//
// Bit-identical to the three ops: every float sum adds the same terms in the
// same order. Two orders stream the chain; the shape's `by_channel` picks one
// (ChooseInvertedResidualGradOrder: the one with less scratch).
//
// - By rows. The 1x1 stages are per pixel. In the depthwise, an input
//   element sums its contributions in (oy, ox) raster order, so input row iy
//   is complete once the output rows that touch it have been visited in
//   ascending order; those are at most ceil(kh / stride) consecutive rows,
//   kept in a ring of dz rows. Each finished row of de goes through expand^T
//   into dx at once. Scratch: (ring rows * Wo + [W]) * E floats.
// - By channel. Each expanded channel e is independent until expand^T sums
//   over it: its dz plane (Ho * Wo, the project's sum over Cout for that
//   channel), then its de plane (H * W, the depthwise's sum in raster
//   order), then its terms of dx, added in e order as expand^T adds them.
//   Scratch: Ho * Wo + [H * W] floats. At the low-resolution, wide blocks
//   of a MobileNetV2 tail (4x4 or 8x8, E = 144..336) a ring of three rows is
//   most of the map; one channel's planes are a few hundred bytes. The
//   multiply-adds are the same; the project and expand filters are read with
//   a stride of E and Cin floats instead of contiguously.
//
// A block whose backward stops at its depthwise (stops_at_depthwise: the
// earliest block a train step reaches, its depthwise training) streams dz
// alone, to the update's callbacks: one dz row (Wo * E floats) or one
// channel plane (Ho * Wo floats) of scratch, no de and no dx.
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
  bool by_channel;  // the stream's order (ChooseInvertedResidualGradOrder)
  // The backward ends at the depthwise (inverted_residual_update.h, the
  // earliest trained block): only dz is streamed, to the callbacks; no de,
  // no dx, grad_input and the expand stage unused.
  bool stops_at_depthwise;
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

inline int32_t InvertedResidualGradRowScratchFloats(
    const InvertedResidualInputGradShape& s) {
  if (s.stops_at_depthwise) return s.out_w * s.expanded_c;  // one dz row
  return InvertedResidualGradRingRows(s) * s.out_w * s.expanded_c +
         (s.has_expand ? s.in_w * s.expanded_c : 0);
}

inline int32_t InvertedResidualGradChannelScratchFloats(
    const InvertedResidualInputGradShape& s) {
  if (s.stops_at_depthwise) return s.out_h * s.out_w;  // one dz plane
  return s.out_h * s.out_w + (s.has_expand ? s.in_h * s.in_w : 0);
}

// Sets s->by_channel to the order that needs less scratch (rows on a tie).
inline void ChooseInvertedResidualGradOrder(InvertedResidualInputGradShape* s) {
  s->by_channel = InvertedResidualGradChannelScratchFloats(*s) <
                  InvertedResidualGradRowScratchFloats(*s);
}

inline int32_t InvertedResidualInputGradScratchFloats(
    const InvertedResidualInputGradShape& s) {
  return s.by_channel ? InvertedResidualGradChannelScratchFloats(s)
                      : InvertedResidualGradRowScratchFloats(s);
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

// Row oy of image n of dz ([out_w, E]): the project's input gradient at
// each of its pixels.
inline void ProjectRow(const InvertedResidualInputGradShape& s,
                       const float* grad_output, const Int8Filter& project,
                       const uint8_t* mask, int32_t n, int32_t oy,
                       float* dz_row) {
  const int64_t pixel0 = (static_cast<int64_t>(n) * s.out_h + oy) * s.out_w;
  for (int32_t ox = 0; ox < s.out_w; ++ox) {
    const int64_t pixel = pixel0 + ox;
    PointwiseInputGrad(grad_output + pixel * s.out_c, project, s.out_c,
                       s.expanded_c, dz_row + ox * s.expanded_c, mask,
                       pixel * s.out_c);
  }
}

// The chain by rows (see the file comment).
template <typename OnDzRow>
inline void StreamByRows(const InvertedResidualInputGradShape& s,
                         const float* grad_output, const Int8Filter& project,
                         const Int8Filter& depthwise, const Int8Filter& expand,
                         const InvertedResidualGradMasks& masks,
                         float* grad_input, float* scratch,
                         OnDzRow&& on_dz_row) {
  const int32_t e_c = s.expanded_c;
  const int32_t ring_rows = InvertedResidualGradRingRows(s);
  const int64_t dz_row_size = static_cast<int64_t>(s.out_w) * e_c;
  float* ring = scratch;
  if (s.stops_at_depthwise) {  // dz only, one row at a time
    for (int32_t n = 0; n < s.batch; ++n) {
      for (int32_t oy = 0; oy < s.out_h; ++oy) {
        ProjectRow(s, grad_output, project, masks.grad_output, n, oy, ring);
        on_dz_row(n, oy, static_cast<const float*>(ring));
      }
    }
    return;
  }
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
        ProjectRow(s, grad_output, project, masks.grad_output, n, next_oy,
                   dz_row);
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


// --- by channel ---------------------------------------------------------------

// Channel e of image n's dz: the project's input gradient at every pixel,
// its terms in PointwiseInputGrad's order (co ascending). grad_output and
// mask_index0 are image n's.
template <bool kMasked>
inline void ProjectChannel(const InvertedResidualInputGradShape& s,
                           const float* grad_output, const Int8Filter& f,
                           int32_t e, const uint8_t* mask, int64_t mask_index0,
                           float* dz) {
  const int32_t pixels = s.out_h * s.out_w;
  const int8_t* column = f.filter + e;
  for (int32_t p = 0; p < pixels; ++p) {
    const float* go = grad_output + static_cast<int64_t>(p) * s.out_c;
    const int64_t mask_index = mask_index0 + static_cast<int64_t>(p) * s.out_c;
    float sum = 0.0f;
    for (int32_t co = 0; co < s.out_c; ++co) {
      if (!Kept<kMasked>(mask, mask_index + co)) continue;
      const float gv = go[co] * f.scales[co];
      sum += gv * static_cast<float>(
                      column[static_cast<int64_t>(co) * s.expanded_c]);
    }
    dz[p] = sum;
  }
}

// Channel e's depthwise input gradient into de (element (iy, ix) at
// de[(iy * W + ix) * de_step]), its terms in (oy, ox) raster order as
// AddDepthwiseRow adds them. mask_index0 is image n's first dz element.
// Its mask (and ExpandChannel's) is tested once per pixel, not per
// multiply-add: a run-time test, so one loop serves both cases.
inline void DepthwiseChannel(const InvertedResidualInputGradShape& s,
                             const float* dz, const Int8Filter& dw, int32_t e,
                             const uint8_t* mask, int64_t mask_index0,
                             float* de, int64_t de_step) {
  const int32_t e_c = s.expanded_c;
  const int64_t in_pixels = static_cast<int64_t>(s.in_h) * s.in_w;
  for (int64_t i = 0; i < in_pixels; ++i) de[i * de_step] = 0.0f;
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    for (int32_t ox = 0; ox < s.out_w; ++ox) {
      const int32_t p = oy * s.out_w + ox;
      if (mask != nullptr &&
          !MaskBit(mask, static_cast<int32_t>(
                             mask_index0 + static_cast<int64_t>(p) * e_c + e))) {
        continue;
      }
      const float g = dz[p];
      for (int32_t ky = 0; ky < s.filter_h; ++ky) {
        const int32_t iy = oy * s.stride_h - s.pad_top + ky;
        if (iy < 0 || iy >= s.in_h) continue;
        for (int32_t kx = 0; kx < s.filter_w; ++kx) {
          const int32_t ix = ox * s.stride_w - s.pad_left + kx;
          if (ix < 0 || ix >= s.in_w) continue;
          const float w =
              static_cast<float>(dw.filter[(ky * s.filter_w + kx) * e_c + e]) *
              dw.scales[e];
          de[(static_cast<int64_t>(iy) * s.in_w + ix) * de_step] += g * w;
        }
      }
    }
  }
}

// Channel e's terms of image n's dx (grad_input), PointwiseInputGrad's
// term for co = e at every pixel.
inline void ExpandChannel(const InvertedResidualInputGradShape& s,
                          const float* de, const Int8Filter& f, int32_t e,
                          const uint8_t* mask, int64_t mask_index0,
                          float* grad_input) {
  const int64_t in_pixels = static_cast<int64_t>(s.in_h) * s.in_w;
  const int8_t* fw = f.filter + static_cast<int64_t>(e) * s.in_c;
  for (int64_t p = 0; p < in_pixels; ++p) {
    if (mask != nullptr &&
        !MaskBit(mask, static_cast<int32_t>(mask_index0 + p * s.expanded_c + e))) {
      continue;
    }
    const float gv = de[p] * f.scales[e];
    float* gi = grad_input + p * s.in_c;
    for (int32_t ci = 0; ci < s.in_c; ++ci) {
      gi[ci] += gv * static_cast<float>(fw[ci]);
    }
  }
}

// The chain by channel (see the file comment).
template <typename OnDzChannel>
inline void StreamByChannel(const InvertedResidualInputGradShape& s,
                            const float* grad_output, const Int8Filter& project,
                            const Int8Filter& depthwise,
                            const Int8Filter& expand,
                            const InvertedResidualGradMasks& masks,
                            float* grad_input, float* scratch,
                            OnDzChannel&& on_dz_channel) {
  const int32_t e_c = s.expanded_c;
  const int64_t out_pixels = static_cast<int64_t>(s.out_h) * s.out_w;
  const int64_t in_pixels = static_cast<int64_t>(s.in_h) * s.in_w;
  const int64_t gi_size = in_pixels * (s.has_expand ? s.in_c : e_c);
  float* dz = scratch;
  float* de = scratch + out_pixels;
  for (int32_t n = 0; n < s.batch; ++n) {
    float* gi = s.stops_at_depthwise ? nullptr : grad_input + n * gi_size;
    for (int64_t i = 0; gi != nullptr && i < gi_size; ++i) gi[i] = 0.0f;
    const int64_t go0 = n * out_pixels * s.out_c;
    const int64_t dz0 = n * out_pixels * e_c;
    const int64_t de0 = n * in_pixels * e_c;
    for (int32_t e = 0; e < e_c; ++e) {
      if (masks.grad_output == nullptr) {
        ProjectChannel<false>(s, grad_output + go0, project, e, nullptr, 0, dz);
      } else {
        ProjectChannel<true>(s, grad_output + go0, project, e,
                             masks.grad_output, go0, dz);
      }
      on_dz_channel(n, e, static_cast<const float*>(dz));
      if (s.stops_at_depthwise) continue;  // dz only
      float* de_e = s.has_expand ? de : gi + e;
      const int64_t de_step = s.has_expand ? 1 : e_c;
      DepthwiseChannel(s, dz, depthwise, e, masks.depthwise, dz0, de_e, de_step);
      if (s.has_expand) ExpandChannel(s, de, expand, e, masks.expand, de0, gi);
    }
  }
}

// The streamed chain of InvertedResidualInputGrad, in the shape's order.
// An op that also needs dz (the depthwise weight and bias gradients,
// inverted_residual_update.h) accumulates from it in a callback, each
// element seen exactly once, before the depthwise mask, right after it is
// computed:
// - by rows, on_dz_row(n, oy, dz_row) gets row oy of image n ([out_w, E]),
//   rows in (n, oy) order;
// - by channel, on_dz_channel(n, e, dz_plane) gets channel e of image n
//   ([out_h * out_w]), in (n, e) order.
// No-op callbacks inline away.
template <typename OnDzRow, typename OnDzChannel>
inline void StreamInputGrad(const InvertedResidualInputGradShape& s,
                            const float* grad_output, const Int8Filter& project,
                            const Int8Filter& depthwise,
                            const Int8Filter& expand,
                            const InvertedResidualGradMasks& masks,
                            float* grad_input, float* scratch,
                            OnDzRow&& on_dz_row, OnDzChannel&& on_dz_channel) {
  if (s.by_channel) {
    StreamByChannel(s, grad_output, project, depthwise, expand, masks,
                    grad_input, scratch, on_dz_channel);
  } else {
    StreamByRows(s, grad_output, project, depthwise, expand, masks, grad_input,
                 scratch, on_dz_row);
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
      [](int32_t, int32_t, const float*) {},
      [](int32_t, int32_t, const float*) {});
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_INVERTED_RESIDUAL_INPUT_GRAD_H_
