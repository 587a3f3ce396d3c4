// Weight standardization (Qiao et al. 2019) of a conv filter and its
// vector-Jacobian product, the math of tflite_tl.layers.standardize_kernel
// (TinyTL's weight-standardised lite residual convs). Each output channel o
// of an OHWI filter is standardised over its fan-in (N = kh * kw * Ci/groups
// contiguous values, the filter row):
//   mean_o = sum_i w[o, i] / N,  var_o = sum_i (w[o, i] - mean_o)^2 / N
//   w_hat[o, i] = (w[o, i] - mean_o) / sqrt(var_o + eps)
// Backward, with r = 1 / sqrt(var_o + eps) and g = dL/dw_hat:
//   dL/dw[o, i] = r * (g[o, i] - mean_i(g[o, :]) - w_hat[o, i] * mean_i(g[o, :] * w_hat[o, :]))
// (the population variance, as in GroupNorm's backward). The statistics are
// taken of w - w[o, 0] (shifted data): a near-constant channel then keeps its
// small deviations exactly instead of losing them to the rounding of a mean
// close to the weights; an exactly constant channel gives w_hat = 0 and a
// zero gradient. No scratch memory: the backward recomputes w_hat.
#ifndef TFLM_KERNELS_REFERENCE_WEIGHT_STANDARDIZE_H_
#define TFLM_KERNELS_REFERENCE_WEIGHT_STANDARDIZE_H_

#include <math.h>
#include <stdint.h>

namespace tflite_tl {
namespace reference {

// Of one filter row w[0..fan_in): its first value (the shift), the mean of
// w - shift and 1 / sqrt(var + epsilon). Two passes.
inline void WeightStandardizeRowStats(const float* w, int32_t fan_in,
                                      float epsilon, float* shift,
                                      float* shifted_mean, float* inv_std) {
  const float w0 = w[0];
  const float count = static_cast<float>(fan_in);
  float sum = 0.0f;
  for (int32_t i = 0; i < fan_in; ++i) sum += w[i] - w0;
  const float m = sum / count;
  float squares = 0.0f;
  for (int32_t i = 0; i < fan_in; ++i) {
    const float d = (w[i] - w0) - m;
    squares += d * d;
  }
  *shift = w0;
  *shifted_mean = m;
  *inv_std = 1.0f / sqrtf(squares / count + epsilon);
}

// w_hat = the standardised w, both [out_channels, fan_in] (an OHWI filter
// row-major). w_hat may alias w.
inline void WeightStandardize(const float* w, int32_t out_channels,
                              int32_t fan_in, float epsilon, float* w_hat) {
  for (int32_t o = 0; o < out_channels; ++o) {
    const int64_t row = static_cast<int64_t>(o) * fan_in;
    float shift, m, r;
    WeightStandardizeRowStats(w + row, fan_in, epsilon, &shift, &m, &r);
    for (int32_t i = 0; i < fan_in; ++i) {
      w_hat[row + i] = ((w[row + i] - shift) - m) * r;
    }
  }
}

// Floats of WeightStandardizeStats per output channel.
constexpr int32_t kStandardizeStatsPerRow = 3;

// Per output channel o of w [out_channels, fan_in]: its row statistics
// (shift, shifted mean, 1 / std) at stats[3 o .. 3 o + 2], what
// WeightStandardize computes for that row.
inline void WeightStandardizeStats(const float* w, int32_t out_channels,
                                   int32_t fan_in, float epsilon,
                                   float* stats) {
  for (int32_t o = 0; o < out_channels; ++o) {
    float* s = stats + kStandardizeStatsPerRow * o;
    WeightStandardizeRowStats(w + static_cast<int64_t>(o) * fan_in, fan_in,
                              epsilon, &s[0], &s[1], &s[2]);
  }
}

// One row of the standardised filter, computed on the fly: row[i] is the
// value WeightStandardize writes for it, bit for bit (the same expression).
struct StandardizedRow {
  const float* w;
  float shift, shifted_mean, inv_std;
  float operator[](int32_t i) const {
    return ((w[i] - shift) - shifted_mean) * inv_std;
  }
};

// The rows (conv_geometry.h's PointerRows contract) of WeightStandardize(w)
// without storing it: 3 floats of statistics per output channel
// (WeightStandardizeStats) instead of the whole standardised filter.
struct StandardizedRows {
  const float* filter;
  const float* stats;
  int32_t fan_in;
  StandardizedRow operator()(int32_t o) const {
    const float* s = stats + kStandardizeStatsPerRow * o;
    return {filter + static_cast<int64_t>(o) * fan_in, s[0], s[1], s[2]};
  }
};

// grad_w = dL/dw from grad_w_hat = dL/dw_hat and the raw filter w, all
// [out_channels, fan_in]. grad_w may alias grad_w_hat (not w).
inline void WeightStandardizeGrad(const float* w, const float* grad_w_hat,
                                  int32_t out_channels, int32_t fan_in,
                                  float epsilon, float* grad_w) {
  const float count = static_cast<float>(fan_in);
  for (int32_t o = 0; o < out_channels; ++o) {
    const int64_t row = static_cast<int64_t>(o) * fan_in;
    const float* wr = w + row;
    const float* gr = grad_w_hat + row;
    float shift, m, r;
    WeightStandardizeRowStats(wr, fan_in, epsilon, &shift, &m, &r);
    float sum_g = 0.0f, sum_g_hat = 0.0f;
    for (int32_t i = 0; i < fan_in; ++i) {
      const float hat = ((wr[i] - shift) - m) * r;
      sum_g += gr[i];
      sum_g_hat += gr[i] * hat;
    }
    const float mean_g = sum_g / count;
    const float mean_g_hat = sum_g_hat / count;
    for (int32_t i = 0; i < fan_in; ++i) {
      const float hat = ((wr[i] - shift) - m) * r;
      grad_w[row + i] = r * (gr[i] - mean_g - hat * mean_g_hat);
    }
  }
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_WEIGHT_STANDARDIZE_H_
