#include "tflm_kernels/reference/sgd.h"

#include "tflm_kernels/codesize/entry_points.h"

void tl_sgd_update(const float* grad, int32_t size, float learning_rate,
                   float* weights) {
  tflite_tl::reference::SgdUpdate(grad, size, learning_rate, weights);
}

void tl_sgd_momentum_update(const float* grad, int32_t size,
                            float learning_rate, float momentum,
                            float* velocity, float* weights) {
  tflite_tl::reference::SgdMomentumUpdate(grad, size, learning_rate, momentum,
                                          velocity, weights);
}
