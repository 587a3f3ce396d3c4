// Int8 inverted-residual block streamed row by row: [expand conv] -> kxk
// depthwise conv -> 1x1 project conv, without the expanded map in memory.
// The expand is any one-group conv (MobileNetV2's 1x1, or a 3x3 stride-2
// stem in front of a block without one), with its own window, stride and
// padding: the expanded map [He, We, E] is that conv's output.
//
// The result is the one of three TFLite int8 kernels run one after the
// other (CONV_2D, DEPTHWISE_CONV_2D, CONV_2D with per-channel int8 filters,
// zero points 0, and int32 biases), value for value: each stage accumulates
//   acc = bias[c] + sum filter[c, ...] * (q_in - zero_point_in)
// in int32 over the in-bounds taps (padding contributes nothing), then
//   q = clamp(zero_point_out + MultiplyByQuantizedMultiplier(acc, m[c], s[c]),
//             act_min, act_max)
// with TFLite's double-rounding fixed-point multiply (gemmlowp's
// SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT).
//
// Memory: the expanded map [He, We, E] never exists. Its rows are computed
// when the depthwise window first needs them, into a ring of filter_h rows
// (filter_h * We * E bytes), each from the expand window's rows of the input
// (which is in memory whole); each output pixel's depthwise result (E bytes)
// is projected at once. Without an expand conv the depthwise reads the input.
//
// Masks (optional): the backward pass through a frozen block needs only the
// 1-bit masks of its activations' linear ranges (activation_mask.h). Each
// expanded row and each depthwise output is computed exactly once here, so
// its bits are set as it is computed; rows no depthwise window reads (a
// VALID or strided tail) are still expanded for their bits, so the masks
// equal TL_RELU_MASK on the unfused layers' int8 outputs bit for bit.
#ifndef TFLM_KERNELS_REFERENCE_INVERTED_RESIDUAL_H_
#define TFLM_KERNELS_REFERENCE_INVERTED_RESIDUAL_H_

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/int8_stage.h"

namespace tflite_tl {
namespace reference {

struct InvertedResidualShape {
  int32_t batch;
  int32_t in_h, in_w, in_c;
  int32_t expanded_c;          // E: the expand's output channels (in_c without)
  int32_t out_h, out_w, out_c;
  int32_t filter_h, filter_w;  // the depthwise window
  int32_t stride_h, stride_w;
  int32_t pad_top, pad_left;   // the depthwise's, on the expanded map
  bool has_expand;
  // The expand conv's window, strides and padding before (1, 1, 1, 1, 0, 0
  // for a 1x1 expand; ignored without one).
  int32_t expand_filter_h, expand_filter_w;
  int32_t expand_stride_h, expand_stride_w;
  int32_t expand_pad_top, expand_pad_left;
  // The depthwise's input: the expanded map He x We (the input's H x W
  // without an expand conv).
  int32_t expanded_h, expanded_w;
};

// Fills the derived fields of `s` (the expanded map's size and the expand's
// padding under `expand_padding`, the output's size and the depthwise's
// padding under `padding`) from the others. Returns false when the expanded
// map or the output would be empty (a VALID window larger than its input, a
// size or stride not positive).
inline bool SetInvertedResidualGeometry(Padding expand_padding,
                                        Padding padding,
                                        InvertedResidualShape* s) {
  s->expanded_h = s->in_h;
  s->expanded_w = s->in_w;
  s->expand_pad_top = 0;
  s->expand_pad_left = 0;
  if (s->has_expand) {
    s->expanded_h = ConvOutputSize(expand_padding, s->in_h,
                                   s->expand_filter_h, s->expand_stride_h);
    s->expanded_w = ConvOutputSize(expand_padding, s->in_w,
                                   s->expand_filter_w, s->expand_stride_w);
    if (s->expanded_h <= 0 || s->expanded_w <= 0) return false;
    s->expand_pad_top =
        ConvPaddingBefore(expand_padding, s->in_h, s->expand_filter_h,
                          s->expand_stride_h, s->expanded_h);
    s->expand_pad_left =
        ConvPaddingBefore(expand_padding, s->in_w, s->expand_filter_w,
                          s->expand_stride_w, s->expanded_w);
  }
  s->out_h = ConvOutputSize(padding, s->expanded_h, s->filter_h, s->stride_h);
  s->out_w = ConvOutputSize(padding, s->expanded_w, s->filter_w, s->stride_w);
  if (s->out_h <= 0 || s->out_w <= 0) return false;
  s->pad_top = ConvPaddingBefore(padding, s->expanded_h, s->filter_h,
                                 s->stride_h, s->out_h);
  s->pad_left = ConvPaddingBefore(padding, s->expanded_w, s->filter_w,
                                  s->stride_w, s->out_w);
  return true;
}

// Where InvertedResidual writes the masks (a null pointer: that mask is not
// written) and the int8 bounds of each linear range (Int8MaskBounds): bit i
// of the flattened NHWC expanded map [N, He, We, E] and of the depthwise
// output [N, Ho, Wo, E], LSB first.
struct InvertedResidualMasks {
  uint8_t* expand;
  int32_t expand_lower, expand_upper;
  uint8_t* depthwise;
  int32_t depthwise_lower, depthwise_upper;
};

// Bytes of scratch InvertedResidual needs.
inline size_t InvertedResidualScratchBytes(const InvertedResidualShape& s) {
  const size_t ring = s.has_expand ? static_cast<size_t>(s.filter_h) *
                                         static_cast<size_t>(s.expanded_w) *
                                         static_cast<size_t>(s.expanded_c)
                                   : 0;
  return ring + static_cast<size_t>(s.expanded_c);
}

// 1x1 convolution of one pixel: in[in_c] -> out[out_c].
inline void PointwisePixel(const Int8Stage& stage, int32_t in_c,
                           int32_t out_c, const int8_t* in, int8_t* out) {
  for (int32_t o = 0; o < out_c; ++o) {
    const int8_t* w = stage.filter + static_cast<size_t>(o) * in_c;
    int32_t acc = stage.bias != nullptr ? stage.bias[o] : 0;
    for (int32_t c = 0; c < in_c; ++c) {
      acc += static_cast<int32_t>(w[c]) *
             (static_cast<int32_t>(in[c]) - stage.input_zero_point);
    }
    out[o] = Requantize(stage, o, acc);
  }
}

// The expand conv at one expanded pixel whose window starts at input row
// iy0, column ix0 (negative: padding, which contributes nothing):
// out[E].
inline void ExpandPixel(const InvertedResidualShape& s, const Int8Stage& expand,
                        const int8_t* in_n, int32_t iy0, int32_t ix0,
                        int8_t* out) {
  const size_t window = static_cast<size_t>(s.expand_filter_h) *
                        s.expand_filter_w * s.in_c;
  for (int32_t o = 0; o < s.expanded_c; ++o) {
    const int8_t* w_o = expand.filter + static_cast<size_t>(o) * window;
    int32_t acc = expand.bias != nullptr ? expand.bias[o] : 0;
    for (int32_t ky = 0; ky < s.expand_filter_h; ++ky) {
      const int32_t iy = iy0 + ky;
      if (iy < 0 || iy >= s.in_h) continue;
      for (int32_t kx = 0; kx < s.expand_filter_w; ++kx) {
        const int32_t ix = ix0 + kx;
        if (ix < 0 || ix >= s.in_w) continue;
        const int8_t* w =
            w_o + (static_cast<size_t>(ky) * s.expand_filter_w + kx) * s.in_c;
        const int8_t* px =
            in_n + (static_cast<size_t>(iy) * s.in_w + ix) * s.in_c;
        for (int32_t c = 0; c < s.in_c; ++c) {
          acc += static_cast<int32_t>(w[c]) *
                 (static_cast<int32_t>(px[c]) - expand.input_zero_point);
        }
      }
    }
    out[o] = Requantize(expand, o, acc);
  }
}

// Computes expanded row `y` of image `n` into its ring slot (from input rows
// y * expand_stride_h - expand_pad_top onwards), and sets its bits of the
// expand mask when there is one.
inline void ExpandRow(const InvertedResidualShape& s, const Int8Stage& expand,
                      const InvertedResidualMasks* masks, int32_t n,
                      const int8_t* in_n, int32_t y, int8_t* ring) {
  const int32_t e_c = s.expanded_c;
  const size_t row_bytes = static_cast<size_t>(s.expanded_w) * e_c;
  int8_t* dst = ring + static_cast<size_t>(y % s.filter_h) * row_bytes;
  const int32_t iy0 = y * s.expand_stride_h - s.expand_pad_top;
  // A 1x1 window never reaches padding: one input pixel's dot products,
  // without ExpandPixel's window loops (a fifth more instructions per MAC
  // on the M4F for MobileNetV2's expands).
  const bool pointwise = s.expand_filter_h == 1 && s.expand_filter_w == 1;
  for (int32_t x = 0; x < s.expanded_w; ++x) {
    int8_t* out = dst + static_cast<size_t>(x) * e_c;
    const int32_t ix0 = x * s.expand_stride_w - s.expand_pad_left;
    if (pointwise) {
      PointwisePixel(expand, s.in_c, e_c,
                     in_n + (static_cast<size_t>(iy0) * s.in_w + ix0) * s.in_c,
                     out);
    } else {
      ExpandPixel(s, expand, in_n, iy0, ix0, out);
    }
    if (masks != nullptr && masks->expand != nullptr) {
      SetMaskBits(out, e_c, ((n * s.expanded_h + y) * s.expanded_w + x) * e_c,
                  masks->expand_lower, masks->expand_upper, masks->expand);
    }
  }
}

// input [N, H, W, in_c] -> output [N, Ho, Wo, out_c]; scratch holds
// InvertedResidualScratchBytes(shape) bytes; every field of `shape` is set
// (SetInvertedResidualGeometry derives the sizes and paddings). `expand` is
// ignored without an expand conv; `masks` (may be null) says which masks to
// write.
inline void InvertedResidual(const InvertedResidualShape& s,
                             const Int8Stage& expand,
                             const Int8Stage& depthwise,
                             const Int8Stage& project, const int8_t* input,
                             int8_t* output, int8_t* scratch,
                             const InvertedResidualMasks* masks = nullptr) {
  const int32_t e_c = s.expanded_c;
  const size_t row_bytes = static_cast<size_t>(s.expanded_w) * e_c;
  int8_t* ring = scratch;
  int8_t* pixel = scratch + (s.has_expand ? s.filter_h * row_bytes : 0);
  uint8_t* dw_mask = masks != nullptr ? masks->depthwise : nullptr;
  const bool expand_mask = s.has_expand && masks != nullptr &&
                           masks->expand != nullptr;
  // Bits are only ever set: every mask starts all zero.
  if (expand_mask) {
    const int32_t bytes =
        MaskBytes(s.batch * s.expanded_h * s.expanded_w * e_c);
    for (int32_t b = 0; b < bytes; ++b) masks->expand[b] = 0;
  }
  if (dw_mask != nullptr) {
    const int32_t bytes = MaskBytes(s.batch * s.out_h * s.out_w * e_c);
    for (int32_t b = 0; b < bytes; ++b) dw_mask[b] = 0;
  }
  for (int32_t n = 0; n < s.batch; ++n) {
    const int8_t* in_n =
        input + static_cast<size_t>(n) * s.in_h * s.in_w * s.in_c;
    int8_t* out_n =
        output + static_cast<size_t>(n) * s.out_h * s.out_w * s.out_c;
    int32_t next_row = 0;  // the next expanded row to compute
    for (int32_t oy = 0; oy < s.out_h; ++oy) {
      const int32_t y0 = oy * s.stride_h - s.pad_top;
      if (s.has_expand) {
        int32_t last = y0 + s.filter_h - 1;
        if (last > s.expanded_h - 1) last = s.expanded_h - 1;
        // Rows above the window are never needed again.
        for (; next_row <= last; ++next_row) {
          ExpandRow(s, expand, masks, n, in_n, next_row, ring);
        }
      }
      for (int32_t ox = 0; ox < s.out_w; ++ox) {
        const int32_t x0 = ox * s.stride_w - s.pad_left;
        for (int32_t c = 0; c < e_c; ++c) {
          int32_t acc = depthwise.bias != nullptr ? depthwise.bias[c] : 0;
          for (int32_t ky = 0; ky < s.filter_h; ++ky) {
            const int32_t iy = y0 + ky;
            if (iy < 0 || iy >= s.expanded_h) continue;
            const int8_t* row =
                s.has_expand
                    ? ring + static_cast<size_t>(iy % s.filter_h) * row_bytes
                    : in_n + static_cast<size_t>(iy) * row_bytes;
            for (int32_t kx = 0; kx < s.filter_w; ++kx) {
              const int32_t ix = x0 + kx;
              if (ix < 0 || ix >= s.expanded_w) continue;
              const int32_t w = depthwise.filter
                  [(static_cast<size_t>(ky) * s.filter_w + kx) * e_c + c];
              acc += w * (static_cast<int32_t>(
                              row[static_cast<size_t>(ix) * e_c + c]) -
                          depthwise.input_zero_point);
            }
          }
          pixel[c] = Requantize(depthwise, c, acc);
        }
        if (dw_mask != nullptr) {
          SetMaskBits(pixel, e_c, ((n * s.out_h + oy) * s.out_w + ox) * e_c,
                      masks->depthwise_lower, masks->depthwise_upper,
                      dw_mask);
        }
        PointwisePixel(project, e_c, s.out_c, pixel,
                       out_n + (static_cast<size_t>(oy) * s.out_w + ox) *
                                   s.out_c);
      }
    }
    // Rows below every window: only their mask bits are wanted.
    for (; expand_mask && next_row < s.expanded_h; ++next_row) {
      ExpandRow(s, expand, masks, n, in_n, next_row, ring);
    }
  }
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_INVERTED_RESIDUAL_H_
