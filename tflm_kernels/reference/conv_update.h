// In-place SGD step of a convolution's (or fully connected layer's) trained
// parameters: TinyTL's biases, TinyTrain's channel-wise sparse updates and
// tiny-training's int8 graphs with float masters.
//
// An all-zero grad_output (TL_SOFTMAX_XENT's gradient of a non-finite loss,
// propagated) leaves every parameter untouched, bit for bit: the step is
// skipped rather than computed, because the saved input of such a step is
// often non-finite itself and 0 * inf = NaN would poison the weights.
//
// Each trained weight's gradient
//   dW[co, ky, kx, ci] = sum_{n, oy, ox} dy[n, oy, ox, co]
//                        * x[n, oy*stride_h - pad_top + ky,
//                              ox*stride_w - pad_left + kx, ci]
// is summed in a register and applied at once (w = w + (-dW * lr)), so no
// gradient buffer exists: work scales with the chosen channels and memory
// with nothing. The sum runs over (n, oy, ox) in the order of
// ConvWeightGradSparse / DepthwiseWeightGrad (int8 inputs scaled once at the
// end, as there), and the bias sum in the order of BiasGrad: an update is
// bit-identical to those kernels followed by SgdUpdate.
//
// Channels: a list of output channels (channel_axis 0: whole filter rows) or
// of input channels (channel_axis 1: one filter column per output channel of
// the channel's group); a null list means every channel of that axis. The
// bias is always updated at every output channel: a bias gradient is cheap
// and needs no saved input (tiny-training updates biases densely).
//
// int8 forward: filter_q ([Co, kh, kw, Ci/g], per-channel scales) is what
// the forward conv reads, and `filter` is the float master of the chosen
// channels only: [K, kh, kw, Ci/g] (axis 0) or [Co, kh, kw, K] (axis 1).
// After the master's step, its entries are re-quantized into filter_q, and
// bias_q is rewritten from the float bias (requantize.h).
//
// QAS (tiny-training, Lin et al. 2022): with qas = true the update is plain
// float SGD of the masters, which is what quantization-aware scaling makes
// the int8 parameters follow. With qas = false and quantized copies present,
// each gradient is first multiplied by its quantized-domain factor
// (filter: scale[co]^2, bias: bias_scale[co]^2): SGD on the integer
// parameters themselves, the ablation that trains far worse.
#ifndef TFLM_KERNELS_REFERENCE_CONV_UPDATE_H_
#define TFLM_KERNELS_REFERENCE_CONV_UPDATE_H_

#include <stdint.h>

#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/activation_quantization.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/requantize.h"
#include "tflm_kernels/reference/sgd.h"

namespace tflite_tl {
namespace reference {

struct SgdOptions {
  float learning_rate;
  bool qas;  // see the header comment
};

// The parameters one update op trains; null pointers are not trained.
struct TrainedParameters {
  float* filter;               // full float filter, or the master (filter_q set)
  int8_t* filter_q;            // int8 forward's filter [Co, kh, kw, Ci/g]
  const float* filter_scales;  // [Co] (depthwise: [C]), with filter_q
  float* bias;                 // [Co]
  int32_t* bias_q;             // int8 forward's bias [Co], needs bias
  const float* bias_scales;    // [Co], with bias_q
};

// channels[k], or k itself for the null list that stands for all channels.
inline int32_t ChannelAt(const int32_t* channels, int32_t k) {
  return channels != nullptr ? channels[k] : k;
}

// Position of the first index outside [0, size), or -1.
inline int32_t FirstChannelOutOfRange(const int32_t* channels,
                                      int32_t num_channels, int32_t size) {
  for (int32_t k = 0; channels != nullptr && k < num_channels; ++k) {
    if (channels[k] < 0 || channels[k] >= size) return k;
  }
  return -1;
}

// Gradient factor of a parameter trained without QAS in the integer domain
// (scale^2), or 1.
inline float DomainFactor(const SgdOptions& sgd, const float* scales,
                          int32_t channel) {
  if (sgd.qas || scales == nullptr) return 1.0f;
  return scales[channel] * scales[channel];
}

// Output positions o in [*begin, *end) whose input position
// o * stride - pad + tap lies inside [0, in_size).
inline void TapOutputRange(int32_t tap, int32_t stride, int32_t pad,
                           int32_t in_size, int32_t out_size, int32_t* begin,
                           int32_t* end) {
  const int32_t low = pad - tap;
  const int32_t high = in_size - 1 + pad - tap;
  int32_t b = low <= 0 ? 0 : (low + stride - 1) / stride;
  int32_t e = high < 0 ? 0 : high / stride + 1;
  if (e > out_size) e = out_size;
  if (b > e) b = e;
  *begin = b;
  *end = e;
}

namespace conv_update_internal {

// The sum of ConvWeightGradAt over the valid output positions of one tap.
// kMasked is a compile-time switch: a run-time mask test per MAC costs ~50%
// more instructions in the unmasked loop on Cortex-M4.
template <typename InputT, bool kMasked>
inline float TapSum(const ConvGeometry& g, const float* grad_output,
                    const uint8_t* mask, int32_t co, const InputT* input,
                    int32_t input_depth, int32_t input_channel, int32_t zero_point,
                    int32_t ky, int32_t kx) {
  int32_t oy0, oy1, ox0, ox1;
  TapOutputRange(ky, g.stride_h, g.pad_top, g.in_h, g.out_h, &oy0, &oy1);
  TapOutputRange(kx, g.stride_w, g.pad_left, g.in_w, g.out_w, &ox0, &ox1);
  const int32_t in_step = g.stride_w * input_depth;
  float sum = 0.0f;
  for (int32_t n = 0; n < g.batch; ++n) {
    for (int32_t oy = oy0; oy < oy1; ++oy) {
      const int32_t iy = oy * g.stride_h - g.pad_top + ky;
      const int32_t ix0 = ox0 * g.stride_w - g.pad_left + kx;
      int32_t o = ((n * g.out_h + oy) * g.out_w + ox0) * g.out_c + co;
      int32_t i = ((n * g.in_h + iy) * g.in_w + ix0) * input_depth + input_channel;
      for (int32_t ox = ox0; ox < ox1; ++ox, o += g.out_c, i += in_step) {
        if (kMasked && !MaskBit(mask, o)) continue;
        sum += grad_output[o] * Centred(input[i], zero_point);
      }
    }
  }
  return sum;
}

// True when every (unmasked) element of grad_output is zero: one compare
// per output element, against the MACs of the update.
inline bool AllZero(const float* grad_output, const uint8_t* mask,
                    int32_t size) {
  for (int32_t i = 0; i < size; ++i) {
    if (MaskedValue(grad_output, mask, i) != 0.0f) return false;
  }
  return true;
}

}  // namespace conv_update_internal

// Gradient of one weight: output channel co, tap (ky, kx), read from channel
// `input_channel` of an input with `input_depth` channels (the full input,
// or only the saved chosen channels). Element indices are 32-bit (TFLM
// tensors have int dims; 64-bit index arithmetic is slow on Cortex-M).
template <typename InputT>
inline float ConvWeightGradAt(const ConvGeometry& g, const float* grad_output,
                              const uint8_t* mask, int32_t co,
                              const InputT* input, int32_t input_depth,
                              int32_t input_channel,
                              const ActivationQuantization& quant, int32_t ky,
                              int32_t kx) {
  float sum = mask == nullptr
                  ? conv_update_internal::TapSum<InputT, false>(
                        g, grad_output, nullptr, co, input, input_depth,
                        input_channel, quant.zero_point, ky, kx)
                  : conv_update_internal::TapSum<InputT, true>(
                        g, grad_output, mask, co, input, input_depth,
                        input_channel, quant.zero_point, ky, kx);
  if (quant.scale != 1.0f) sum *= quant.scale;
  return sum;
}

// Bias step at every channel (grad_output is [rows, channels]), then its
// int32 copy if there is one.
inline void BiasUpdate(const float* grad_output, const uint8_t* mask,
                       int32_t rows, int32_t channels, const SgdOptions& sgd,
                       const TrainedParameters& p) {
  for (int32_t c = 0; c < channels; ++c) {
    float sum = 0.0f;
    for (int32_t r = 0, i = c; r < rows; ++r, i += channels) {
      sum += MaskedValue(grad_output, mask, i);
    }
    const float grad = sum * DomainFactor(sgd, p.bias_q != nullptr
                                                   ? p.bias_scales
                                                   : nullptr, c);
    p.bias[c] = SgdStep(p.bias[c], grad, sgd.learning_rate);
    if (p.bias_q != nullptr) {
      p.bias_q[c] = QuantizeBias(p.bias[c], p.bias_scales[c]);
    }
  }
}

// Conv2D (grouped too; a fully connected layer is the 1x1 case).
// grad_output: [batch, out_h, out_w, out_c]; mask: its packed 1-bit mask or
// null. input: [batch, in_h, in_w, input_depth] with input_depth = g.in_c,
// or (channel_axis 1) = num_channels: only the chosen input channels, in
// list order. Returns false, writing nothing, if a channel is out of range.
template <typename InputT>
inline bool ConvUpdate(const ConvGeometry& g, const float* grad_output,
                       const uint8_t* mask, const InputT* input,
                       const ActivationQuantization& quant, int32_t input_depth,
                       const int32_t* channels, int32_t num_channels,
                       int32_t channel_axis, const SgdOptions& sgd,
                       const TrainedParameters& p) {
  const int32_t axis_size = channel_axis == 0 ? g.out_c : g.in_c;
  if (FirstChannelOutOfRange(channels, num_channels, axis_size) >= 0) {
    return false;
  }
  if (conv_update_internal::AllZero(grad_output, mask,
                                    g.batch * g.out_h * g.out_w * g.out_c)) {
    return true;  // a zero step (see the header comment)
  }
  if (p.filter != nullptr) {
    const int32_t group_in = g.in_c / g.groups;
    const int32_t group_out = g.out_c / g.groups;
    const int32_t taps = g.filter_h * g.filter_w;
    const bool subset = input_depth != g.in_c;
    for (int32_t k = 0; k < num_channels; ++k) {
      const int32_t channel = ChannelAt(channels, k);
      if (channel_axis == 0) {  // filter row `channel`
        const int32_t co = channel;
        const int32_t row = taps * group_in;
        float* w = p.filter + static_cast<int64_t>(p.filter_q != nullptr ? k : co) * row;
        const float factor = DomainFactor(sgd, p.filter_q != nullptr ? p.filter_scales : nullptr, co);
        const int32_t in_offset = (co / group_out) * group_in;
        for (int32_t t = 0; t < taps; ++t) {
          for (int32_t ci = 0; ci < group_in; ++ci) {
            const float grad =
                ConvWeightGradAt<InputT>(g, grad_output, mask, co, input, input_depth,
                                 in_offset + ci, quant, t / g.filter_w,
                                 t % g.filter_w) * factor;
            float& weight = w[t * group_in + ci];
            weight = SgdStep(weight, grad, sgd.learning_rate);
          }
        }
        if (p.filter_q != nullptr) {
          int8_t* q = p.filter_q + static_cast<int64_t>(co) * row;
          for (int32_t i = 0; i < row; ++i) {
            q[i] = QuantizeWeight(w[i], p.filter_scales[co]);
          }
        }
        continue;
      }
      // channel_axis 1: column `channel % group_in` of its group's rows.
      const int32_t group = channel / group_in;
      const int32_t column = channel - group * group_in;
      const int32_t input_channel = subset ? k : channel;
      for (int32_t co = group * group_out; co < (group + 1) * group_out; ++co) {
        const float factor = DomainFactor(sgd, p.filter_q != nullptr ? p.filter_scales : nullptr, co);
        for (int32_t t = 0; t < taps; ++t) {
          const float grad =
              ConvWeightGradAt<InputT>(g, grad_output, mask, co, input, input_depth,
                               input_channel, quant, t / g.filter_w,
                               t % g.filter_w) * factor;
          const int64_t tap = static_cast<int64_t>(co) * taps + t;
          const int64_t index = tap * group_in + column;
          if (p.filter_q != nullptr) {
            float& master = p.filter[tap * num_channels + k];
            master = SgdStep(master, grad, sgd.learning_rate);
            p.filter_q[index] = QuantizeWeight(master, p.filter_scales[co]);
          } else {
            p.filter[index] = SgdStep(p.filter[index], grad, sgd.learning_rate);
          }
        }
      }
    }
  }
  if (p.bias != nullptr) {
    BiasUpdate(grad_output, mask, g.batch * g.out_h * g.out_w, g.out_c, sgd, p);
  }
  return true;
}

// DepthwiseConv2D with depth multiplier 1 (g.in_c == g.out_c == C): filter
// [1, kh, kw, C], channels index C, master [1, kh, kw, K] with filter_q.
// input: [batch, in_h, in_w, C] or only the chosen channels
// (input_depth = num_channels < C). Returns false, writing nothing, if a
// channel is out of range.
template <typename InputT>
inline bool DepthwiseUpdate(const ConvGeometry& g, const float* grad_output,
                            const uint8_t* mask, const InputT* input,
                            const ActivationQuantization& quant,
                            int32_t input_depth, const int32_t* channels,
                            int32_t num_channels, const SgdOptions& sgd,
                            const TrainedParameters& p) {
  if (FirstChannelOutOfRange(channels, num_channels, g.out_c) >= 0) {
    return false;
  }
  if (conv_update_internal::AllZero(grad_output, mask,
                                    g.batch * g.out_h * g.out_w * g.out_c)) {
    return true;  // a zero step (see the header comment)
  }
  if (p.filter != nullptr) {
    const int32_t taps = g.filter_h * g.filter_w;
    const bool subset = input_depth != g.in_c;
    for (int32_t k = 0; k < num_channels; ++k) {
      const int32_t c = ChannelAt(channels, k);
      const float factor = DomainFactor(sgd, p.filter_q != nullptr ? p.filter_scales : nullptr, c);
      for (int32_t t = 0; t < taps; ++t) {
        const float grad =
            ConvWeightGradAt<InputT>(g, grad_output, mask, c, input, input_depth,
                             subset ? k : c, quant, t / g.filter_w,
                             t % g.filter_w) * factor;
        const int64_t index = static_cast<int64_t>(t) * g.out_c + c;
        if (p.filter_q != nullptr) {
          float& master = p.filter[static_cast<int64_t>(t) * num_channels + k];
          master = SgdStep(master, grad, sgd.learning_rate);
          p.filter_q[index] = QuantizeWeight(master, p.filter_scales[c]);
        } else {
          p.filter[index] = SgdStep(p.filter[index], grad, sgd.learning_rate);
        }
      }
    }
  }
  if (p.bias != nullptr) {
    BiasUpdate(grad_output, mask, g.batch * g.out_h * g.out_w, g.out_c, sgd, p);
  }
  return true;
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_CONV_UPDATE_H_
