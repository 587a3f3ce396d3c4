#include "tflm_kernels/reference/weight_standardize.h"

#include "tflm_kernels/codesize/entry_points.h"

void tl_weight_standardize(const float* w, int32_t out_channels,
                           int32_t fan_in, float epsilon, float* w_hat) {
  tflite_tl::reference::WeightStandardize(w, out_channels, fan_in, epsilon,
                                          w_hat);
}

void tl_weight_standardize_grad(const float* w, const float* grad_w_hat,
                                int32_t out_channels, int32_t fan_in,
                                float epsilon, float* grad_w) {
  tflite_tl::reference::WeightStandardizeGrad(w, grad_w_hat, out_channels,
                                              fan_in, epsilon, grad_w);
}

void tl_weight_standardize_stats(const float* w, int32_t out_channels,
                                 int32_t fan_in, float epsilon, float* stats) {
  tflite_tl::reference::WeightStandardizeStats(w, out_channels, fan_in,
                                               epsilon, stats);
}
