#include "tflm_kernels/reference/softmax_xent.h"

#include "tflm_kernels/codesize/entry_points.h"

bool tl_softmax_xent(const float* logits, const int32_t* labels, int32_t batch,
                     int32_t classes, float label_smoothing, float* loss,
                     float* grad_logits) {
  return tflite_tl::reference::SoftmaxCrossEntropy(
      logits, labels, batch, classes, label_smoothing, loss, grad_logits);
}
