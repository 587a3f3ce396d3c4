#include "tflm_kernels/reference/ws_conv_update.h"

#include "tflm_kernels/codesize/entry_points.h"

void tl_ws_conv_update(const tflite_tl::reference::ConvGeometry* g,
                       const float* grad_output, const uint8_t* mask,
                       const float* input, float epsilon, float learning_rate,
                       float* filter, float* bias, float* scratch) {
  tflite_tl::reference::StandardizedConvUpdate(*g, grad_output, mask, input,
                                               epsilon, learning_rate, filter,
                                               bias, scratch);
}

void tl_ws_conv_input_grad(const tflite_tl::reference::ConvGeometry* g,
                           const float* grad_output, const uint8_t* mask,
                           const float* filter, float epsilon, float* scratch,
                           float* grad_input) {
  tflite_tl::reference::StandardizedConvInputGrad(*g, grad_output, mask, filter,
                                                  epsilon, scratch, grad_input);
}
