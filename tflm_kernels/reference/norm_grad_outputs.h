// What the normalization backward kernels (group_norm.h, batch_norm_grad.h)
// write: the input gradient and in-place SGD steps of the trained scale and
// shift. Null members are not computed.
#ifndef TFLM_KERNELS_REFERENCE_NORM_GRAD_OUTPUTS_H_
#define TFLM_KERNELS_REFERENCE_NORM_GRAD_OUTPUTS_H_

namespace tflite_tl {
namespace reference {

struct NormGradOutputs {
  float* grad_input;    // dx, from gamma before its update
  float* gamma;         // [C], updated in place (a variable tensor)
  float* beta;          // [C], updated in place
  float learning_rate;  // of the in-place steps
};

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_NORM_GRAD_OUTPUTS_H_
