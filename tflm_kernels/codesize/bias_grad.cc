#include "tflm_kernels/reference/bias_grad.h"

#include "tflm_kernels/codesize/entry_points.h"

void tl_bias_grad(const float* grad_output, int32_t rows, int32_t channels,
                  float* grad_bias) {
  tflite_tl::reference::BiasGrad(grad_output, rows, channels, grad_bias);
}

void tl_bias_grad_fused_sgd(const float* grad_output, int32_t rows,
                            int32_t channels, float learning_rate, float* bias,
                            float* grad_bias) {
  tflite_tl::reference::BiasGradFusedSgd(grad_output, rows, channels,
                                         learning_rate, bias, grad_bias);
}
