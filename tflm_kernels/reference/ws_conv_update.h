// In-place SGD step of a weight-standardised convolution's raw filter
// (TinyTL's lite residual convs, tflite_tl.layers.WSConv2D) and bias: the
// weight gradient, the vector-Jacobian product of the standardisation and
// the SGD step in one pass, one filter row (output channel) at a time.
//
// The forward convolves with w_hat = WeightStandardize(w)
// (weight_standardize.h), so for each output channel o:
//   g[o, :]  = dL/dw_hat[o, :]   (ConvWeightGradAt, conv_update.h: the sum
//              over (n, oy, ox) of the masked grad_output times the input)
//   dw[o, :] = WeightStandardizeGrad(w[o, :], g[o, :])
//   w[o, :]  = SgdStep(w[o, :], dw[o, :])
// and the bias as BiasUpdate. The result is bit-identical to
// ConvWeightGradSparse over all channels, then WeightStandardizeGrad, then
// SgdUpdate (and BiasUpdate), but only one row of the gradient exists at a
// time: `scratch` holds fan_in = kh * kw * Ci / groups floats. An all-zero
// grad_output (a non-finite loss, see conv_update.h) is no step.
#ifndef TFLM_KERNELS_REFERENCE_WS_CONV_UPDATE_H_
#define TFLM_KERNELS_REFERENCE_WS_CONV_UPDATE_H_

#include <stdint.h>

#include "tflm_kernels/reference/activation_quantization.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/conv_input_grad.h"
#include "tflm_kernels/reference/conv_update.h"
#include "tflm_kernels/reference/sgd.h"
#include "tflm_kernels/reference/weight_standardize.h"

namespace tflite_tl {
namespace reference {

// Floats of scratch StandardizedConvUpdate needs: one filter row.
inline int32_t StandardizedConvScratch(const ConvGeometry& g) {
  return FilterFanIn(g);
}

// Floats of scratch StandardizedConvInputGrad needs: the row statistics of
// the filter (3 per output channel).
inline int32_t StandardizedConvInputGradScratch(const ConvGeometry& g) {
  return kStandardizeStatsPerRow * g.out_c;
}

// Floats of scratch for one TL_WS_CONV_UPDATE: StandardizedConvUpdate's row
// and, with the input gradient from the raw filter first, its statistics
// (one buffer serves both, one after the other).
inline int32_t StandardizedConvOpScratch(const ConvGeometry& g,
                                         bool input_grad_from_raw_filter) {
  const int32_t row = StandardizedConvScratch(g);
  const int32_t stats = StandardizedConvInputGradScratch(g);
  return input_grad_from_raw_filter && stats > row ? stats : row;
}

// The layer's input gradient through w_hat = WeightStandardize(filter),
// from the raw OHWI filter: its row statistics into `scratch`
// (StandardizedConvInputGradScratch(g) floats), w_hat's values computed on
// the fly from them (ConvInputGradStandardized). The forward's w_hat is the
// same function of the same filter, so grad_input is bit-identical to
// ConvInputGrad through it, and neither the forward's w_hat nor a copy of
// it is kept for the backward pass. Call it before StandardizedConvUpdate
// (the step's starting filter); `scratch` may then be reused as that op's.
inline void StandardizedConvInputGrad(const ConvGeometry& g,
                                      const float* grad_output,
                                      const uint8_t* mask, const float* filter,
                                      float epsilon, float* scratch,
                                      float* grad_input) {
  WeightStandardizeStats(filter, g.out_c, StandardizedConvScratch(g), epsilon,
                         scratch);
  ConvInputGradStandardized(g, grad_output, filter, scratch, grad_input, mask);
}

// grad_output: [batch, out_h, out_w, out_c], mask: its 1-bit mask or null;
// input: the saved float layer input [batch, in_h, in_w, in_c]; filter: the
// raw OHWI filter [out_c, kh, kw, in_c / groups], updated in place; bias:
// [out_c] or null; scratch: StandardizedConvScratch(g) floats.
inline void StandardizedConvUpdate(const ConvGeometry& g,
                                   const float* grad_output,
                                   const uint8_t* mask, const float* input,
                                   float epsilon, float learning_rate,
                                   float* filter, float* bias,
                                   float* scratch) {
  if (conv_update_internal::AllZero(grad_output, mask,
                                    g.batch * g.out_h * g.out_w * g.out_c)) {
    return;  // a zero step (see conv_update.h)
  }
  const int32_t group_in = g.in_c / g.groups;
  const int32_t group_out = g.out_c / g.groups;
  const int32_t taps = g.filter_h * g.filter_w;
  const int32_t row = taps * group_in;
  for (int32_t co = 0; co < g.out_c; ++co) {
    const int32_t in_offset = (co / group_out) * group_in;
    for (int32_t t = 0; t < taps; ++t) {
      for (int32_t ci = 0; ci < group_in; ++ci) {
        scratch[t * group_in + ci] = ConvWeightGradAt<float>(
            g, grad_output, mask, co, input, g.in_c, in_offset + ci,
            kNoQuantization, t / g.filter_w, t % g.filter_w);
      }
    }
    float* w = filter + static_cast<int64_t>(co) * row;
    WeightStandardizeGrad(w, scratch, 1, row, epsilon, scratch);
    for (int32_t i = 0; i < row; ++i) {
      w[i] = SgdStep(w[i], scratch[i], learning_rate);
    }
  }
  if (bias != nullptr) {
    TrainedParameters p{};
    p.bias = bias;
    BiasUpdate(grad_output, mask, g.batch * g.out_h * g.out_w, g.out_c,
               SgdOptions{learning_rate, true}, p);
  }
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_WS_CONV_UPDATE_H_
