#include "tflm_kernels/reference/activation_mask.h"

#include "tflm_kernels/codesize/entry_points.h"

void tl_relu_mask(const float* x, int32_t size, float upper, uint8_t* mask) {
  tflite_tl::reference::PackActivationMask<float, float>(x, size, 0.0f, upper,
                                                         mask);
}

void tl_masked_grad(const float* grad_output, const uint8_t* mask,
                    int32_t size, float* grad_input) {
  tflite_tl::reference::ApplyActivationMask(grad_output, mask, size,
                                            grad_input);
}
