#include "tflm_kernels/reference/depthwise_weight_grad.h"

#include "tflm_kernels/codesize/entry_points.h"

void tl_depthwise_weight_grad(const tflite_tl::reference::ConvGeometry* g,
                              const float* input, const float* grad_output,
                              float* grad_filter) {
  tflite_tl::reference::DepthwiseWeightGrad(*g, input, grad_output,
                                            grad_filter);
}
