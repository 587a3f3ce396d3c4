// The backward of an int8 inverted-residual block whose depthwise conv
// trains (TinyTrain: chosen channels' weights, and its bias), streamed (by
// rows or by channel): frozen 1x1 expand (+ ReLU/ReLU6) -> depthwise
// (+ ReLU/ReLU6, trained) -> linear 1x1 project (frozen, or trained as well). It replaces the
// unfused chain
//
//   dz = project^T(mask_out . dy), then    TL_CONV_UPDATE          [N,Ho,Wo,E]
//        the project's step (if it trains; else TL_CONV_INPUT_GRAD)
//   de = depthwise^T(mask_dw . dz), then   TL_DEPTHWISE_UPDATE     [N,H,W,E]
//        the depthwise's SGD step from dz and its saved int8 input
//   dx = expand^T(mask_exp . de)           TL_CONV_INPUT_GRAD      [N,H,W,Cin]
//
// without its two expanded-width float maps: the input gradient is streamed
// as in inverted_residual_input_grad.h (by rows: a ring of dz rows, one de
// row; by channel: one channel's dz and de planes), and each dz row or
// channel plane, once computed, is also summed into the depthwise's weight
// gradients of the chosen channels and its bias gradients (one float per
// chosen tap and per channel, in scratch). The SGD steps run after the whole
// input gradient, so that gradient goes through the step's starting
// filters, as the update ops' fused input gradients do.
//
// Bit-identical to the chain: every dz row is the same sum (the stream's), a
// weight gradient adds its terms over (n, oy, ox) in raster order, as
// conv_update.h's TapSum does, the bias over the same rows as BiasUpdate, and
// the step applies conv_update.h's arithmetic (scale, QAS domain factor,
// SgdStep, re-quantization). An all-zero (masked) dz skips the step when the
// filter trains, as DepthwiseUpdate does. The project's gradients read only
// grad_output and its saved input, both whole tensors already: its step is
// ConvUpdate (BiasUpdate when only its bias trains) itself, run last.
//
// Depth multiplier 1; int8 filters, symmetric per output channel; the saved
// depthwise input is int8 (the expand's output, or only its chosen channels).
#ifndef TFLM_KERNELS_REFERENCE_INVERTED_RESIDUAL_UPDATE_H_
#define TFLM_KERNELS_REFERENCE_INVERTED_RESIDUAL_UPDATE_H_

#include <stdint.h>

#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/activation_quantization.h"
#include "tflm_kernels/reference/conv_update.h"
#include "tflm_kernels/reference/inverted_residual_input_grad.h"
#include "tflm_kernels/reference/requantize.h"
#include "tflm_kernels/reference/sgd.h"

namespace tflite_tl {
namespace reference {

// The depthwise's trained parameters and what their gradients read.
struct InvertedResidualDepthwiseUpdate {
  const int8_t* input;  // saved depthwise input [N, H, W, input_depth]
  ActivationQuantization quant;
  int32_t input_depth;  // E (the full input) or num_channels (chosen only)
  const int32_t* channels;  // chosen channels, null: all E
  int32_t num_channels;
  SgdOptions sgd;
  // filter: master [1, kh, kw, K] with filter_q (the depthwise filter the
  // input gradient reads, rewritten after the step) or null when only the
  // bias trains; bias [E] (+ bias_q) or null.
  TrainedParameters params;
};

// The project conv's trained parameters, as TL_CONV_UPDATE trains a
// channel-sparse 1x1 conv; null in InvertedResidualUpdate: frozen.
struct InvertedResidualProjectUpdate {
  const int8_t* input;  // saved project input [N, Ho, Wo, input_depth]
  ActivationQuantization quant;
  int32_t input_depth;  // E (the depthwise output) or num_channels (axis 1)
  const int32_t* channels;  // chosen channels of channel_axis, null: all
  int32_t num_channels;
  int32_t channel_axis;  // 0: output channels (Cout), 1: input channels (E)
  // filter: master ([K, 1, 1, E] axis 0, [Cout, 1, 1, K] axis 1) with
  // filter_q (the project filter the input gradient reads, rewritten after
  // the step), or null when only the bias trains; bias [Cout] (+ bias_q) or
  // null.
  TrainedParameters params;
};

// Floats of scratch: the input gradient's stream, then one sum per chosen
// tap and one per channel.
inline int32_t InvertedResidualUpdateScratchFloats(
    const InvertedResidualInputGradShape& s, int32_t num_channels) {
  return InvertedResidualInputGradScratchFloats(s) +
         num_channels * s.filter_h * s.filter_w + s.expanded_c;
}

namespace inverted_residual_update_internal {

// Adds dz row (n, oy) to the sums: weight gradient [k * taps + t] of chosen
// channel k at tap t (the terms TapSum adds for this row, in ox order) and
// bias gradient [c] (BiasUpdate's terms). Returns whether a masked value of
// the row is not 0 (DepthwiseUpdate's AllZero test).
inline bool AccumulateRow(const InvertedResidualInputGradShape& s,
                          const InvertedResidualDepthwiseUpdate& u,
                          const uint8_t* mask, int32_t n, int32_t oy,
                          const float* dz_row, float* weight_sums,
                          float* bias_sums) {
  const int32_t e_c = s.expanded_c;
  const int32_t row0 = (n * s.out_h + oy) * s.out_w * e_c;  // mask index
  bool nonzero = false;
  for (int32_t ox = 0, i = 0; ox < s.out_w; ++ox) {
    for (int32_t c = 0; c < e_c; ++c, ++i) {
      const float v =
          mask == nullptr || MaskBit(mask, row0 + i) ? dz_row[i] : 0.0f;
      if (v != 0.0f) nonzero = true;
      if (u.params.bias != nullptr) bias_sums[c] += v;
    }
  }
  if (u.params.filter == nullptr) return nonzero;
  const int32_t taps = s.filter_h * s.filter_w;
  const bool subset = u.input_depth != e_c;
  const int32_t in_step = s.stride_w * u.input_depth;
  for (int32_t ky = 0; ky < s.filter_h; ++ky) {
    const int32_t iy = oy * s.stride_h - s.pad_top + ky;
    if (iy < 0 || iy >= s.in_h) continue;
    for (int32_t kx = 0; kx < s.filter_w; ++kx) {
      int32_t ox0, ox1;
      TapOutputRange(kx, s.stride_w, s.pad_left, s.in_w, s.out_w, &ox0, &ox1);
      const int32_t ix0 = ox0 * s.stride_w - s.pad_left + kx;
      const int32_t t = ky * s.filter_w + kx;
      for (int32_t k = 0; k < u.num_channels; ++k) {
        const int32_t c = ChannelAt(u.channels, k);
        const int32_t in_channel = subset ? k : c;
        float& sum = weight_sums[k * taps + t];
        int32_t o = ox0 * e_c + c;
        int32_t x = ((n * s.in_h + iy) * s.in_w + ix0) * u.input_depth +
                    in_channel;
        for (int32_t ox = ox0; ox < ox1; ++ox, o += e_c, x += in_step) {
          if (mask != nullptr && !MaskBit(mask, row0 + o)) continue;
          sum += dz_row[o] * Centred(u.input[x], u.quant.zero_point);
        }
      }
    }
  }
  return nonzero;
}

// AccumulateRow's terms for channel c of image n, from its dz plane
// ([out_h * out_w], by-channel stream): the same terms in the same
// (oy, ox) order for every sum, so both orders give the same bits.
inline bool AccumulateChannel(const InvertedResidualInputGradShape& s,
                              const InvertedResidualDepthwiseUpdate& u,
                              const uint8_t* mask, int32_t n, int32_t c,
                              const float* dz, float* weight_sums,
                              float* bias_sums) {
  const int32_t e_c = s.expanded_c;
  const int32_t pixels = s.out_h * s.out_w;
  const int64_t mask0 = static_cast<int64_t>(n) * pixels * e_c + c;
  bool nonzero = false;
  for (int32_t p = 0; p < pixels; ++p) {
    const float v =
        mask == nullptr || MaskBit(mask, static_cast<int32_t>(mask0 + static_cast<int64_t>(p) * e_c))
            ? dz[p]
            : 0.0f;
    if (v != 0.0f) nonzero = true;
    if (u.params.bias != nullptr) bias_sums[c] += v;
  }
  if (u.params.filter == nullptr) return nonzero;
  int32_t k = 0;
  while (k < u.num_channels && ChannelAt(u.channels, k) != c) ++k;
  if (k == u.num_channels) return nonzero;  // not a chosen channel
  const int32_t taps = s.filter_h * s.filter_w;
  const int32_t in_channel = u.input_depth != e_c ? k : c;
  const int32_t in_step = s.stride_w * u.input_depth;
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    for (int32_t ky = 0; ky < s.filter_h; ++ky) {
      const int32_t iy = oy * s.stride_h - s.pad_top + ky;
      if (iy < 0 || iy >= s.in_h) continue;
      for (int32_t kx = 0; kx < s.filter_w; ++kx) {
        int32_t ox0, ox1;
        TapOutputRange(kx, s.stride_w, s.pad_left, s.in_w, s.out_w, &ox0, &ox1);
        const int32_t ix0 = ox0 * s.stride_w - s.pad_left + kx;
        float& sum = weight_sums[k * taps + ky * s.filter_w + kx];
        int32_t x = ((n * s.in_h + iy) * s.in_w + ix0) * u.input_depth +
                    in_channel;
        for (int32_t ox = ox0; ox < ox1; ++ox, x += in_step) {
          const int32_t p = oy * s.out_w + ox;
          if (mask != nullptr &&
              !MaskBit(mask, static_cast<int32_t>(mask0 + static_cast<int64_t>(p) * e_c))) {
            continue;
          }
          sum += dz[p] * Centred(u.input[x], u.quant.zero_point);
        }
      }
    }
  }
  return nonzero;
}

// The project's 1x1 geometry: the depthwise output to grad_output.
inline ConvGeometry ProjectGeometry(const InvertedResidualInputGradShape& s) {
  ConvGeometry g{};
  g.batch = s.batch;
  g.in_h = g.out_h = s.out_h;
  g.in_w = g.out_w = s.out_w;
  g.in_c = s.expanded_c;
  g.out_c = s.out_c;
  g.filter_h = g.filter_w = g.stride_h = g.stride_w = g.groups = 1;
  g.pad_top = g.pad_left = 0;
  return g;
}

// DepthwiseUpdate's step from the finished sums.
inline void ApplyStep(const InvertedResidualInputGradShape& s,
                      const InvertedResidualDepthwiseUpdate& u,
                      const float* weight_sums, const float* bias_sums) {
  const TrainedParameters& p = u.params;
  const float lr = u.sgd.learning_rate;
  if (p.filter != nullptr) {
    const int32_t taps = s.filter_h * s.filter_w;
    for (int32_t k = 0; k < u.num_channels; ++k) {
      const int32_t c = ChannelAt(u.channels, k);
      const float factor = DomainFactor(
          u.sgd, p.filter_q != nullptr ? p.filter_scales : nullptr, c);
      for (int32_t t = 0; t < taps; ++t) {
        float sum = weight_sums[k * taps + t];
        if (u.quant.scale != 1.0f) sum *= u.quant.scale;
        const float grad = sum * factor;
        const int64_t index = static_cast<int64_t>(t) * s.expanded_c + c;
        if (p.filter_q != nullptr) {
          float& master = p.filter[static_cast<int64_t>(t) * u.num_channels + k];
          master = SgdStep(master, grad, lr);
          p.filter_q[index] = QuantizeWeight(master, p.filter_scales[c]);
        } else {
          p.filter[index] = SgdStep(p.filter[index], grad, lr);
        }
      }
    }
  }
  if (p.bias != nullptr) {
    for (int32_t c = 0; c < s.expanded_c; ++c) {
      const float grad =
          bias_sums[c] *
          DomainFactor(u.sgd, p.bias_q != nullptr ? p.bias_scales : nullptr, c);
      p.bias[c] = SgdStep(p.bias[c], grad, lr);
      if (p.bias_q != nullptr) {
        p.bias_q[c] = QuantizeBias(p.bias[c], p.bias_scales[c]);
      }
    }
  }
}

}  // namespace inverted_residual_update_internal

// grad_output, project, depthwise (its int8 filter: the forward's, before
// the step; with a trained filter the same array as u.params.filter_q),
// expand, masks, grad_input: as InvertedResidualInputGrad (has_expand must
// be true: a block without expand conv has no second expanded-width map),
// except with s.stops_at_depthwise: the block is the earliest the backward
// reaches, so only dz is streamed (into the sums), and grad_input, expand
// and masks.expand are unused (may be null).
// u: the depthwise's parameters (nothing trains when both its filter and
// bias are null). pu: the project's, null when it is frozen; with a trained
// filter pu->params.filter_q is project.data. u.sgd is the step of both.
// scratch: InvertedResidualUpdateScratchFloats(s, u.num_channels) floats.
// Returns false, writing nothing, if a channel is out of range.
inline bool InvertedResidualUpdate(const InvertedResidualInputGradShape& s,
                                   const float* grad_output,
                                   const Int8Filter& project,
                                   const Int8Filter& depthwise,
                                   const Int8Filter& expand,
                                   const InvertedResidualGradMasks& masks,
                                   const InvertedResidualDepthwiseUpdate& u,
                                   float* grad_input, float* scratch,
                                   const InvertedResidualProjectUpdate* pu =
                                       nullptr) {
  namespace internal = inverted_residual_update_internal;
  if (FirstChannelOutOfRange(u.channels, u.num_channels, s.expanded_c) >= 0) {
    return false;
  }
  if (pu != nullptr &&
      FirstChannelOutOfRange(pu->channels, pu->num_channels,
                             pu->channel_axis == 0 ? s.out_c : s.expanded_c) >=
          0) {
    return false;
  }
  float* weight_sums = scratch + InvertedResidualInputGradScratchFloats(s);
  float* bias_sums = weight_sums + u.num_channels * s.filter_h * s.filter_w;
  for (int32_t i = 0; i < u.num_channels * s.filter_h * s.filter_w + s.expanded_c;
       ++i) {
    weight_sums[i] = 0.0f;
  }
  bool nonzero = false;
  inverted_residual_input_grad_internal::StreamInputGrad(
      s, grad_output, project, depthwise, expand, masks, grad_input, scratch,
      [&](int32_t n, int32_t oy, const float* dz_row) {
        if (internal::AccumulateRow(s, u, masks.depthwise, n, oy, dz_row,
                                    weight_sums, bias_sums)) {
          nonzero = true;
        }
      },
      [&](int32_t n, int32_t c, const float* dz) {
        if (internal::AccumulateChannel(s, u, masks.depthwise, n, c, dz,
                                        weight_sums, bias_sums)) {
          nonzero = true;
        }
      });
  // A zero step is skipped where DepthwiseUpdate skips it (a trained
  // filter); a bias alone steps by its zero gradient, as BiasUpdate does.
  if ((nonzero || u.params.filter == nullptr) &&
      (u.params.filter != nullptr || u.params.bias != nullptr)) {
    internal::ApplyStep(s, u, weight_sums, bias_sums);
  }
  if (pu == nullptr) return true;
  // The project's step, once its filter has served the input gradient:
  // TL_CONV_UPDATE's calls on the same tensors.
  const ConvGeometry g = internal::ProjectGeometry(s);
  if (pu->params.filter == nullptr) {
    if (pu->params.bias != nullptr) {
      BiasUpdate(grad_output, masks.grad_output, s.batch * s.out_h * s.out_w,
                 s.out_c, u.sgd, pu->params);
    }
    return true;
  }
  return ConvUpdate<int8_t>(g, grad_output, masks.grad_output, pu->input,
                            pu->quant, pu->input_depth, pu->channels,
                            pu->num_channels, pu->channel_axis, u.sgd,
                            pu->params);
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_INVERTED_RESIDUAL_UPDATE_H_
