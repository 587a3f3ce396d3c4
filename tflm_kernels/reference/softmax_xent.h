// Softmax cross-entropy loss and its gradient, fused (the loss op of a
// classifier's train step).
//
// Targets with label smoothing eps (Keras' CategoricalCrossentropy):
//   t[j] = (1 - eps) * onehot(label)[j] + eps / K
// per sample, with the log-sum-exp of the max-shifted logits (stable for any
// finite logits):
//   lse = m + log(sum_j exp(x[j] - m)),  m = max_j x[j]
//   loss_n = sum_j t[j] * (lse - x[j])     (TF's form, also for inf/NaN)
//   loss = mean_n loss_n
//   grad_logits[n, j] = (softmax[n, j] - t[j]) / N
// A non-finite logit or loss makes every gradient 0 (the train step becomes
// a no-op) while the loss output carries the non-finite value, as TF
// computes it.
#ifndef TFLM_KERNELS_REFERENCE_SOFTMAX_XENT_H_
#define TFLM_KERNELS_REFERENCE_SOFTMAX_XENT_H_

#include <float.h>
#include <math.h>
#include <stdint.h>

#include "tflm_kernels/reference/finite.h"

namespace tflite_tl {
namespace reference {

// Index of the first sample whose label lies outside [0, classes), or -1.
inline int32_t FirstLabelOutOfRange(const int32_t* labels, int32_t batch,
                                    int32_t classes) {
  for (int32_t n = 0; n < batch; ++n) {
    if (labels[n] < 0 || labels[n] >= classes) return n;
  }
  return -1;
}

// logits: [batch, classes]; labels: [batch] in [0, classes).
// loss: one float; grad_logits: [batch, classes], overwritten.
// Returns false, writing nothing, if a label is out of range.
inline bool SoftmaxCrossEntropy(const float* logits, const int32_t* labels,
                                int32_t batch, int32_t classes,
                                float label_smoothing, float* loss,
                                float* grad_logits) {
  if (FirstLabelOutOfRange(labels, batch, classes) >= 0) return false;
  const float off = label_smoothing / static_cast<float>(classes);
  const float on = (1.0f - label_smoothing) + off;
  const float n_float = static_cast<float>(batch);
  bool finite = true;
  float total = 0.0f;
  for (int32_t n = 0; n < batch; ++n) {
    const float* x = logits + static_cast<int64_t>(n) * classes;
    float* g = grad_logits + static_cast<int64_t>(n) * classes;
    float m = x[0];
    for (int32_t j = 0; j < classes; ++j) {
      finite = finite && IsFinite(x[j]);
      if (x[j] > m) m = x[j];
    }
    float sum = 0.0f;
    for (int32_t j = 0; j < classes; ++j) {
      g[j] = expf(x[j] - m);
      sum += g[j];
    }
    const float lse = m + logf(sum);
    float sample_loss = 0.0f;
    for (int32_t j = 0; j < classes; ++j) {
      const float t = j == labels[n] ? on : off;
      sample_loss += t * (lse - x[j]);
      g[j] = (g[j] / sum - t) / n_float;
    }
    total += sample_loss;
  }
  *loss = total / n_float;
  if (!finite || !IsFinite(*loss)) {
    const int64_t size = static_cast<int64_t>(batch) * classes;
    for (int64_t i = 0; i < size; ++i) grad_logits[i] = 0.0f;
  }
  return true;
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_SOFTMAX_XENT_H_
