#include "tflm_kernels/codesize/entry_points.h"
#include "tflm_kernels/reference/conv_weight_grad.h"

bool tl_conv_weight_grad_sparse(const tflite_tl::reference::ConvGeometry* g,
                                const float* input, const float* grad_output,
                                const int32_t* channels, int32_t num_channels,
                                float* grad_filter) {
  return tflite_tl::reference::ConvWeightGradSparse(
      *g, input, grad_output, channels, num_channels, grad_filter);
}

bool tl_conv_weight_grad_sparse_int8(
    const tflite_tl::reference::ConvGeometry* g, const int8_t* input,
    float input_scale, int32_t input_zero_point, const float* grad_output,
    const int32_t* channels, int32_t num_channels, float* grad_filter) {
  return tflite_tl::reference::ConvWeightGradSparse<int8_t>(
      *g, input, {input_scale, input_zero_point}, grad_output, channels,
      num_channels, grad_filter);
}
