#include "tflm_kernels/reference/depthwise_weight_grad.h"

#include "tflm_kernels/codesize/entry_points.h"

void tl_depthwise_weight_grad(const tflite_tl::reference::ConvGeometry* g,
                              const float* input, const float* grad_output,
                              float* grad_filter) {
  tflite_tl::reference::DepthwiseWeightGrad(*g, input, grad_output,
                                            grad_filter);
}

void tl_depthwise_weight_grad_int8(const tflite_tl::reference::ConvGeometry* g,
                                   const int8_t* input, float input_scale,
                                   int32_t input_zero_point,
                                   const float* grad_output,
                                   float* grad_filter) {
  tflite_tl::reference::DepthwiseWeightGrad<int8_t>(
      *g, input, {input_scale, input_zero_point}, grad_output, grad_filter);
}
