// The backward pass of a bias-trained depthwise convolution (depth
// multiplier 1) fused with that of the bias-trained layer feeding it (its
// "upstream": a conv with a fused ReLU/ReLU6), so that the depthwise input
// gradient is never stored: it is computed one input row at a time into a
// row buffer, and each row goes straight into the upstream's backward.
//
// For every row (n, iy) of the depthwise input, in order:
//   row[ix, c]  = depthwise input gradient, the sums of
//                 DepthwiseInputGrad (same terms, same order)
//   v[ix, c]    = row[ix, c] where the upstream's activation mask bit is set
//                 (0 elsewhere)
//   sum[c]     += v[ix, c]                  (the upstream's bias gradient)
//   up_grad_input[n, iy, ix, :] = ConvInputGrad of the 1x1 upstream conv at
//                 that position (only when it is wanted)
// then the depthwise bias step from grad_output (BiasUpdate) and the
// upstream's bias step from sum (BiasUpdate's arithmetic). Every sum runs in
// the order of the unfused kernels, so the result is bit-identical to
// TL_DEPTHWISE_UPDATE (with its input gradient) followed by TL_CONV_UPDATE
// (bias only, mask, optional input gradient): only the W x C row buffer and
// C bias sums exist, instead of the [N, H, W, C] gradient map.
//
// With a downstream (the 1x1 conv, without activation, that reads the
// depthwise output, e.g. MobileNetV2's project conv), grad_output itself is
// computed a row at a time as that conv's input gradient (ConvInputGrad's
// sums) from its output gradient, and the downstream's bias steps too: the
// same as TL_CONV_UPDATE (bias only, with input gradient) run first. Compute
// is traded for memory there: each grad_output row is recomputed for every
// input row it reaches (about kh / stride times) and once more for the
// depthwise bias sums.
#ifndef TFLM_KERNELS_REFERENCE_DEPTHWISE_CHAIN_UPDATE_H_
#define TFLM_KERNELS_REFERENCE_DEPTHWISE_CHAIN_UPDATE_H_

#include <stdint.h>

#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/conv_update.h"
#include "tflm_kernels/reference/requantize.h"
#include "tflm_kernels/reference/sgd.h"

namespace tflite_tl {
namespace reference {

// The layer whose output the depthwise convolution reads.
template <typename FilterT>
struct ChainUpstream {
  const uint8_t* mask;         // its activation's mask (depthwise input order), or null
  const FilterT* filter;       // 1x1 filter [C, in_c] (OHWI), null: no input gradient
  const float* filter_scales;  // [C] for an int8 filter, null for float
  int32_t in_c;                // its input channels
  float* grad_input;           // [N, H, W, in_c], with filter
  TrainedParameters params;    // bias (required), bias_q, bias_scales
};

// The 1x1 conv without activation that reads the depthwise output (optional,
// its "downstream"): with it, grad_output is not given but computed, row by
// row, as this conv's input gradient (ConvInputGrad) from its own output
// gradient, so that map is never stored either.
template <typename FilterT>
struct ChainDownstream {
  const float* grad_output;    // [N, Ho, Wo, out_c]: its output gradient
  const FilterT* filter;       // [out_c, C] (OHWI 1x1)
  const float* filter_scales;  // [out_c] for an int8 filter, null for float
  int32_t out_c;
  TrainedParameters params;    // bias (required), bias_q, bias_scales
};

// Floats of the scratch buffer DepthwiseChainUpdate needs: one input row and
// the upstream's bias sums, and with a downstream one grad_output row and
// the depthwise bias sums.
inline int32_t DepthwiseChainScratchFloats(const ConvGeometry& g,
                                           bool downstream = false) {
  return g.in_w * g.in_c + g.in_c +
         (downstream ? g.out_w * g.out_c + g.out_c : 0);
}

namespace depthwise_chain_internal {

// A 1x1 conv's input gradient at one position, from its output gradient dy
// [out_c] (mask bits from mask_index, or no mask), as ConvInputGrad computes
// it: gi[ci] = sum over co, ascending, of (dy[co] * scale[co]) * f[co, ci].
template <typename FilterT>
inline void PointwiseInputGrad(const FilterT* filter, const float* scales,
                               const uint8_t* mask, int32_t mask_index,
                               int32_t out_c, int32_t in_c, const float* dy,
                               float* gi) {
  for (int32_t ci = 0; ci < in_c; ++ci) gi[ci] = 0.0f;
  for (int32_t co = 0; co < out_c; ++co) {
    if (mask != nullptr && !MaskBit(mask, mask_index + co)) continue;
    const float gv = scales != nullptr ? dy[co] * scales[co] : dy[co];
    const FilterT* f = filter + co * in_c;
    for (int32_t ci = 0; ci < in_c; ++ci) {
      gi[ci] += gv * static_cast<float>(f[ci]);
    }
  }
}

// Row (n, oy) of the depthwise grad_output [out_w, C]: in grad_output, or
// the downstream's input gradient computed into buf.
template <typename T>
inline const float* GradOutputRow(const ConvGeometry& g,
                                  const float* grad_output,
                                  const ChainDownstream<T>* ds, int32_t n,
                                  int32_t oy, float* buf) {
  const int32_t first = (n * g.out_h + oy) * g.out_w;
  if (ds == nullptr) return grad_output + first * g.out_c;
  for (int32_t ox = 0; ox < g.out_w; ++ox) {
    PointwiseInputGrad<T>(ds->filter, ds->filter_scales, nullptr, 0,
                          ds->out_c, g.out_c,
                          ds->grad_output + (first + ox) * ds->out_c,
                          buf + ox * g.out_c);
  }
  return buf;
}

// Row (n, iy) of the depthwise input gradient (multiplier 1) into row
// [in_w, C], with the terms of DepthwiseInputGrad added in its order (over
// (oy, ox) ascending) and with its arithmetic per filter type.
template <typename FilterT, typename DownT, bool kMasked>
inline void InputGradRow(const ConvGeometry& g, const float* grad_output,
                         const ChainDownstream<DownT>* ds, float* go_buf,
                         const FilterT* filter, const float* scales,
                         const uint8_t* mask, int32_t n, int32_t iy,
                         float* row) {
  const int32_t c_size = g.in_c;
  for (int32_t i = 0; i < g.in_w * c_size; ++i) row[i] = 0.0f;
  for (int32_t oy = 0; oy < g.out_h; ++oy) {
    const int32_t ky = iy - (oy * g.stride_h - g.pad_top);
    if (ky < 0 || ky >= g.filter_h) continue;
    const float* go_row = GradOutputRow<DownT>(g, grad_output, ds, n, oy, go_buf);
    for (int32_t ox = 0; ox < g.out_w; ++ox) {
      const int32_t ix0 = ox * g.stride_w - g.pad_left;
      const int32_t go_index = ((n * g.out_h + oy) * g.out_w + ox) * g.out_c;
      const float* go = go_row + ox * g.out_c;
      for (int32_t kx = 0; kx < g.filter_w; ++kx) {
        const int32_t ix = ix0 + kx;
        if (ix < 0 || ix >= g.in_w) continue;
        float* gi = row + ix * c_size;
        const FilterT* fw = filter + (ky * g.filter_w + kx) * g.out_c;
        if (scales != nullptr) {
          for (int32_t c = 0; c < c_size; ++c) {
            if (kMasked && !MaskBit(mask, go_index + c)) continue;
            gi[c] += go[c] * (static_cast<float>(fw[c]) * scales[c]);
          }
        } else {
          for (int32_t c = 0; c < c_size; ++c) {
            float sum = 0.0f;
            const float dy =
                (!kMasked || MaskBit(mask, go_index + c)) ? go[c] : 0.0f;
            sum += dy * static_cast<float>(fw[c]);
            gi[c] += sum;
          }
        }
      }
    }
  }
}

template <typename FilterT, typename UpFilterT, bool kMasked>
inline void Rows(const ConvGeometry& g, const float* grad_output,
                 const ChainDownstream<UpFilterT>* ds, float* go_buf,
                 const uint8_t* mask, const FilterT* filter,
                 const float* scales, const ChainUpstream<UpFilterT>& up,
                 float* row, float* sums) {
  const int32_t c_size = g.in_c;
  for (int32_t n = 0; n < g.batch; ++n) {
    for (int32_t iy = 0; iy < g.in_h; ++iy) {
      InputGradRow<FilterT, UpFilterT, kMasked>(g, grad_output, ds, go_buf,
                                                filter, scales, mask, n, iy,
                                                row);
      const int32_t base = (n * g.in_h + iy) * g.in_w * c_size;
      for (int32_t ix = 0, j = 0; ix < g.in_w; ++ix) {
        for (int32_t c = 0; c < c_size; ++c, ++j) {
          // MaskedValue of the upstream's gradient, as BiasUpdate reads it.
          sums[c] += (up.mask == nullptr || MaskBit(up.mask, base + j))
                         ? row[j] : 0.0f;
        }
      }
      if (up.filter == nullptr) continue;
      for (int32_t ix = 0; ix < g.in_w; ++ix) {
        const int32_t position = (n * g.in_h + iy) * g.in_w + ix;
        PointwiseInputGrad<UpFilterT>(
            up.filter, up.filter_scales, up.mask, position * c_size, c_size,
            up.in_c, row + ix * c_size,
            up.grad_input + static_cast<int64_t>(position) * up.in_c);
      }
    }
  }
}

// Bias step of `channels` biases from their gradient sums (BiasUpdate's
// arithmetic after its sums).
inline void BiasStep(const float* sums, int32_t channels, const SgdOptions& sgd,
                     const TrainedParameters& p) {
  for (int32_t c = 0; c < channels; ++c) {
    const float grad =
        sums[c] * DomainFactor(sgd, p.bias_q != nullptr ? p.bias_scales
                                                        : nullptr, c);
    p.bias[c] = SgdStep(p.bias[c], grad, sgd.learning_rate);
    if (p.bias_q != nullptr) {
      p.bias_q[c] = QuantizeBias(p.bias[c], p.bias_scales[c]);
    }
  }
}

}  // namespace depthwise_chain_internal

// grad_output: [batch, out_h, out_w, C] (null with a downstream); mask: its
// 1-bit mask or null. filter: the depthwise forward's [1, kh, kw, C] filter
// (int8 with scales, or float with scales null); dw: the depthwise's trained
// parameters (a null bias trains nothing). ds: the optional downstream 1x1
// conv (then its bias step too, from its output gradient as BiasUpdate).
// scratch: DepthwiseChainScratchFloats(g, ds != null) floats. g describes
// the depthwise convolution (in_c == out_c).
template <typename FilterT, typename UpFilterT>
inline void DepthwiseChainUpdate(const ConvGeometry& g,
                                 const float* grad_output, const uint8_t* mask,
                                 const FilterT* filter, const float* scales,
                                 const SgdOptions& sgd,
                                 const TrainedParameters& dw,
                                 const ChainUpstream<UpFilterT>& up,
                                 float* scratch,
                                 const ChainDownstream<UpFilterT>* ds = nullptr) {
  float* row = scratch;
  float* sums = scratch + g.in_w * g.in_c;
  float* go_buf = sums + g.in_c;               // with ds
  float* dw_sums = go_buf + g.out_w * g.out_c;  // with ds
  for (int32_t c = 0; c < g.in_c; ++c) sums[c] = 0.0f;
  if (mask == nullptr) {
    depthwise_chain_internal::Rows<FilterT, UpFilterT, false>(
        g, grad_output, ds, go_buf, nullptr, filter, scales, up, row, sums);
  } else {
    depthwise_chain_internal::Rows<FilterT, UpFilterT, true>(
        g, grad_output, ds, go_buf, mask, filter, scales, up, row, sums);
  }
  if (ds == nullptr) {
    if (dw.bias != nullptr) {
      BiasUpdate(grad_output, mask, g.batch * g.out_h * g.out_w, g.out_c, sgd,
                 dw);
    }
  } else {
    // The depthwise bias sums over its (computed) grad_output rows in
    // order, as BiasUpdate sums them; then the downstream's own step.
    for (int32_t c = 0; c < g.out_c; ++c) dw_sums[c] = 0.0f;
    for (int32_t n = 0; n < g.batch; ++n) {
      for (int32_t oy = 0; oy < g.out_h; ++oy) {
        const float* go = depthwise_chain_internal::GradOutputRow<UpFilterT>(
            g, nullptr, ds, n, oy, go_buf);
        const int32_t base = (n * g.out_h + oy) * g.out_w * g.out_c;
        for (int32_t ox = 0, j = 0; ox < g.out_w; ++ox) {
          for (int32_t c = 0; c < g.out_c; ++c, ++j) {
            dw_sums[c] +=
                (mask == nullptr || MaskBit(mask, base + j)) ? go[j] : 0.0f;
          }
        }
      }
    }
    if (dw.bias != nullptr) {
      depthwise_chain_internal::BiasStep(dw_sums, g.out_c, sgd, dw);
    }
    BiasUpdate(ds->grad_output, nullptr, g.batch * g.out_h * g.out_w,
               ds->out_c, sgd, ds->params);
  }
  // The upstream's step: BiasUpdate's arithmetic on the sums.
  depthwise_chain_internal::BiasStep(sums, g.in_c, sgd, up.params);
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_DEPTHWISE_CHAIN_UPDATE_H_
