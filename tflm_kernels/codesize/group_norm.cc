#include "tflm_kernels/reference/group_norm.h"

#include "tflm_kernels/codesize/entry_points.h"

using tflite_tl::reference::GroupNormShape;
using tflite_tl::reference::NormGradOutputs;

void tl_group_norm(const GroupNormShape* s, const float* x, const float* gamma,
                   const float* beta, float epsilon, float* stats, float* y) {
  tflite_tl::reference::GroupNorm(*s, x, gamma, beta, epsilon, stats, y);
}

void tl_group_norm_grad(const GroupNormShape* s, const float* grad_output,
                        const uint8_t* mask, const float* x, const float* gamma,
                        float epsilon, float* stats,
                        const NormGradOutputs* out) {
  tflite_tl::reference::GroupNormGrad(*s, grad_output, mask, x, gamma, epsilon,
                                      stats, *out);
}
