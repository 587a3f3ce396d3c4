#include "tflm_kernels/reference/batch_norm_grad.h"

#include "tflm_kernels/codesize/entry_points.h"

using tflite_tl::reference::NormGradOutputs;

void tl_batch_norm_grad(const float* grad_output, const uint8_t* mask,
                        const float* x, const float* mean, const float* inv_std,
                        const float* gamma, int32_t rows, int32_t channels,
                        const NormGradOutputs* out) {
  tflite_tl::reference::BatchNormGrad<float>(
      grad_output, mask, x, tflite_tl::reference::kNoQuantization, mean,
      inv_std, gamma, rows, channels, *out);
}

void tl_batch_norm_grad_int8(const float* grad_output, const uint8_t* mask,
                             const int8_t* x, float input_scale,
                             int32_t input_zero_point, const float* mean,
                             const float* inv_std, const float* gamma,
                             int32_t rows, int32_t channels,
                             const NormGradOutputs* out) {
  tflite_tl::reference::BatchNormGrad<int8_t>(
      grad_output, mask, x, {input_scale, input_zero_point}, mean, inv_std,
      gamma, rows, channels, *out);
}
