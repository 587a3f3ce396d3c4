// Gradient of a batch normalization applied with its frozen moving
// statistics, i.e. the per-channel affine map the forward pass runs as
// builtin MUL/ADD:
//   y = (x - mean[c]) * inv_std[c] * gamma[c] + beta[c],
//   inv_std = 1 / sqrt(moving_var + eps)
// Backward (FT-Norm+Last and TinyTL's lite-residual norms train gamma/beta):
//   dx = dy * (gamma[c] * inv_std[c])      (gamma before its update)
//   dgamma[c] = sum dy * (x - mean[c]) * inv_std[c],  dbeta[c] = sum dy
// The saved input may be float or the int8 tensor of a quantized forward
// (real = scale * (q - zero_point)).
#ifndef TFLM_KERNELS_REFERENCE_BATCH_NORM_GRAD_H_
#define TFLM_KERNELS_REFERENCE_BATCH_NORM_GRAD_H_

#include <stdint.h>

#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/activation_quantization.h"
#include "tflm_kernels/reference/norm_grad_outputs.h"
#include "tflm_kernels/reference/sgd.h"

namespace tflite_tl {
namespace reference {

// grad_output, x: [rows, channels] (rows = every axis but the last);
// mask: grad_output's packed mask or null. gamma null means 1. x and mean
// are only read when out.gamma is set (dgamma), inv_std when out.grad_input
// or out.gamma is. The result is written to `out` (NormGradOutputs).
template <typename InputT>
inline void BatchNormGrad(const float* grad_output, const uint8_t* mask,
                          const InputT* x, const ActivationQuantization& quant,
                          const float* mean, const float* inv_std,
                          const float* gamma, int32_t rows, int32_t channels,
                          const NormGradOutputs& out) {
  if (out.grad_input != nullptr) {
    for (int32_t c = 0; c < channels; ++c) {
      const float factor = gamma != nullptr ? gamma[c] * inv_std[c] : inv_std[c];
      for (int32_t r = 0, i = c; r < rows; ++r, i += channels) {
        out.grad_input[i] = MaskedValue(grad_output, mask, i) * factor;
      }
    }
  }
  for (int32_t c = 0; (out.gamma != nullptr || out.beta != nullptr) && c < channels;
       ++c) {
    float dgamma = 0.0f, dbeta = 0.0f;
    for (int32_t r = 0, i = c; r < rows; ++r, i += channels) {
      const float dy = MaskedValue(grad_output, mask, i);
      if (out.gamma != nullptr) {
        const float real = quant.scale * Centred(x[i], quant.zero_point);
        dgamma += dy * (real - mean[c]);
      }
      dbeta += dy;
    }
    if (out.gamma != nullptr) {
      out.gamma[c] = SgdStep(out.gamma[c], dgamma * inv_std[c], out.learning_rate);
    }
    if (out.beta != nullptr) {
      out.beta[c] = SgdStep(out.beta[c], dbeta, out.learning_rate);
    }
  }
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_BATCH_NORM_GRAD_H_
