#include "tflm_kernels/reference/conv_input_grad.h"

#include "tflm_kernels/codesize/entry_points.h"

void tl_conv_input_grad_int8(const tflite_tl::reference::ConvGeometry* g,
                             const float* grad_output, const int8_t* filter,
                             const float* scales, float* grad_input,
                             const uint8_t* mask) {
  tflite_tl::reference::ConvInputGrad<int8_t>(*g, grad_output, filter, scales,
                                              grad_input, mask);
}
