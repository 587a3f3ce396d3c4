#include "tflm_kernels/reference/avgpool_grad.h"

#include "tflm_kernels/codesize/entry_points.h"

void tl_avgpool_grad(const tflite_tl::reference::ConvGeometry* g,
                     const float* grad_output, float* grad_input) {
  tflite_tl::reference::AveragePoolGrad(*g, grad_output, grad_input);
}
