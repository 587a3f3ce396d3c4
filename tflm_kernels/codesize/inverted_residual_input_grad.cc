#include "tflm_kernels/reference/inverted_residual_input_grad.h"

#include "tflm_kernels/codesize/entry_points.h"

void tl_inverted_residual_input_grad(
    const tflite_tl::reference::InvertedResidualInputGradShape* s,
    const float* grad_output, const tflite_tl::reference::Int8Filter* project,
    const tflite_tl::reference::Int8Filter* depthwise,
    const tflite_tl::reference::Int8Filter* expand,
    const tflite_tl::reference::InvertedResidualGradMasks* masks,
    float* grad_input, float* scratch) {
  tflite_tl::reference::InvertedResidualInputGrad(*s, grad_output, *project,
                                                  *depthwise, *expand, *masks,
                                                  grad_input, scratch);
}
