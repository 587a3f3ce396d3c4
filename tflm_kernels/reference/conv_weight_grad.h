// Convolution weight gradient restricted to a subset of output channels.
//
// TinyTrain's task-adaptive sparse update trains only the most important
// output channels of a few layers. Only their filter rows are computed, so
// the cost and the gradient buffer scale with the number of chosen channels.
//
//   grad_filter[k, ky, kx, ci] =
//     sum_{n, oy, ox} grad_output[n, oy, ox, channels[k]]
//                     * input[n, oy*stride_h - pad_top + ky,
//                               ox*stride_w - pad_left + kx, ci]
// (out-of-range input positions are the zero padding). The input may be a
// float tensor or the int8 tensor saved by a quantized forward pass (see
// activation_quantization.h).
#ifndef TFLM_KERNELS_REFERENCE_CONV_WEIGHT_GRAD_H_
#define TFLM_KERNELS_REFERENCE_CONV_WEIGHT_GRAD_H_

#include <stdint.h>

#include "tflm_kernels/reference/activation_quantization.h"
#include "tflm_kernels/reference/conv_geometry.h"

namespace tflite_tl {
namespace reference {

// True iff every channel index is in [0, out_channels).
inline bool ChannelsInRange(const int32_t* channels, int32_t num_channels,
                            int32_t out_channels) {
  for (int32_t k = 0; k < num_channels; ++k) {
    if (channels[k] < 0 || channels[k] >= out_channels) return false;
  }
  return true;
}

// input:       [batch, in_h, in_w, in_c], float, or int8 with `quant`
// grad_output: [batch, out_h, out_w, out_c]
// channels:    [num_channels] output-channel indices (any order, may be empty)
// grad_filter: [num_channels, filter_h, filter_w, in_c / groups],
//              overwritten; row k is the gradient of filter row channels[k]
//              (which reads the input channels of its group).
// Returns false, writing nothing, if a channel index is out of range.
template <typename InputT>
inline bool ConvWeightGradSparse(const ConvGeometry& g, const InputT* input,
                                 const ActivationQuantization& quant,
                                 const float* grad_output,
                                 const int32_t* channels,
                                 int32_t num_channels, float* grad_filter) {
  if (!ChannelsInRange(channels, num_channels, g.out_c)) return false;
  const int32_t group_in = g.in_c / g.groups;
  const int32_t group_out = g.out_c / g.groups;
  const int32_t row_size = g.filter_h * g.filter_w * group_in;
  for (int32_t i = 0; i < num_channels * row_size; ++i) grad_filter[i] = 0.0f;
  for (int32_t n = 0; n < g.batch; ++n) {
    for (int32_t oy = 0; oy < g.out_h; ++oy) {
      const int32_t iy0 = oy * g.stride_h - g.pad_top;
      for (int32_t ox = 0; ox < g.out_w; ++ox) {
        const int32_t ix0 = ox * g.stride_w - g.pad_left;
        const float* go =
            grad_output +
            ((static_cast<int64_t>(n) * g.out_h + oy) * g.out_w + ox) * g.out_c;
        for (int32_t k = 0; k < num_channels; ++k) {
          const float gv = go[channels[k]];
          const int32_t in_offset = (channels[k] / group_out) * group_in;
          float* gf = grad_filter + static_cast<int64_t>(k) * row_size;
          for (int32_t ky = 0; ky < g.filter_h; ++ky) {
            const int32_t iy = iy0 + ky;
            if (iy < 0 || iy >= g.in_h) continue;
            for (int32_t kx = 0; kx < g.filter_w; ++kx) {
              const int32_t ix = ix0 + kx;
              if (ix < 0 || ix >= g.in_w) continue;
              const InputT* in =
                  input +
                  ((static_cast<int64_t>(n) * g.in_h + iy) * g.in_w + ix) *
                      g.in_c + in_offset;
              float* gw = gf + (ky * g.filter_w + kx) * group_in;
              for (int32_t ci = 0; ci < group_in; ++ci) {
                gw[ci] += gv * Centred(in[ci], quant.zero_point);
              }
            }
          }
        }
      }
    }
  }
  ApplyScale(quant, num_channels * row_size, grad_filter);
  return true;
}

// Float activations.
inline bool ConvWeightGradSparse(const ConvGeometry& g, const float* input,
                                 const float* grad_output,
                                 const int32_t* channels,
                                 int32_t num_channels, float* grad_filter) {
  return ConvWeightGradSparse<float>(g, input, kNoQuantization, grad_output,
                                     channels, num_channels, grad_filter);
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_CONV_WEIGHT_GRAD_H_
