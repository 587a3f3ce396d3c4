// Group normalization (Wu & He 2018) forward and backward, the math of
// tf-keras' GroupNormalization on NHWC tensors: the channels split into
// `groups` groups of C / groups; each (sample, group) is normalized by the
// mean and biased variance over its spatial positions and channels, with
// epsilon inside the square root, then scaled and shifted per channel:
//   xhat = (x - mean) / sqrt(var + eps),  y = gamma[c] * xhat + beta[c]
// Backward, per (sample, group) of M elements, dxhat = dy * gamma[c]:
//   dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
//   dgamma[c] = sum_{n, h, w} dy * xhat,  dbeta[c] = sum_{n, h, w} dy
// The gradient recomputes the statistics from the saved input (no stats
// tensor); it needs 2 * batch * groups floats of scratch for them.
#ifndef TFLM_KERNELS_REFERENCE_GROUP_NORM_H_
#define TFLM_KERNELS_REFERENCE_GROUP_NORM_H_

#include <math.h>
#include <stdint.h>

#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/norm_grad_outputs.h"
#include "tflm_kernels/reference/sgd.h"

namespace tflite_tl {
namespace reference {

// Sizes of a group-norm call: x is [batch, spatial (= H * W), channels].
struct GroupNormShape {
  int32_t batch;
  int32_t spatial;
  int32_t channels;
  int32_t groups;  // divides channels
};

// Mean and 1 / sqrt(var + eps) of every (sample, group), two-pass, into
// mean[n * groups + g] and inv_std[n * groups + g].
inline void GroupNormStats(const GroupNormShape& s, const float* x,
                           float epsilon, float* mean, float* inv_std) {
  const int32_t per_group = s.channels / s.groups;
  const float count = static_cast<float>(s.spatial * per_group);
  for (int32_t n = 0; n < s.batch; ++n) {
    const float* xn = x + static_cast<int64_t>(n) * s.spatial * s.channels;
    for (int32_t g = 0; g < s.groups; ++g) {
      const int32_t c0 = g * per_group;
      float sum = 0.0f;
      for (int32_t p = 0; p < s.spatial; ++p) {
        const float* v = xn + static_cast<int64_t>(p) * s.channels + c0;
        for (int32_t c = 0; c < per_group; ++c) sum += v[c];
      }
      const float m = sum / count;
      float squares = 0.0f;
      for (int32_t p = 0; p < s.spatial; ++p) {
        const float* v = xn + static_cast<int64_t>(p) * s.channels + c0;
        for (int32_t c = 0; c < per_group; ++c) {
          const float d = v[c] - m;
          squares += d * d;
        }
      }
      mean[n * s.groups + g] = m;
      inv_std[n * s.groups + g] = 1.0f / sqrtf(squares / count + epsilon);
    }
  }
}

// y = gamma * xhat + beta; gamma / beta null mean 1 / 0. `stats` is scratch
// of 2 * batch * groups floats. y may alias x.
inline void GroupNorm(const GroupNormShape& s, const float* x,
                      const float* gamma, const float* beta, float epsilon,
                      float* stats, float* y) {
  float* mean = stats;
  float* inv_std = stats + s.batch * s.groups;
  GroupNormStats(s, x, epsilon, mean, inv_std);
  const int32_t per_group = s.channels / s.groups;
  for (int32_t n = 0; n < s.batch; ++n) {
    for (int32_t p = 0; p < s.spatial; ++p) {
      const int64_t row = (static_cast<int64_t>(n) * s.spatial + p) * s.channels;
      for (int32_t c = 0; c < s.channels; ++c) {
        const int32_t k = n * s.groups + c / per_group;
        const float xhat = (x[row + c] - mean[k]) * inv_std[k];
        const float scaled = gamma != nullptr ? xhat * gamma[c] : xhat;
        y[row + c] = beta != nullptr ? scaled + beta[c] : scaled;
      }
    }
  }
}

// dy: grad_output [batch, spatial, channels], through `mask` (null: none).
// gamma null means 1 (no scale). `stats`: scratch, 2 * batch * groups.
inline void GroupNormGrad(const GroupNormShape& s, const float* grad_output,
                          const uint8_t* mask, const float* x,
                          const float* gamma, float epsilon, float* stats,
                          const NormGradOutputs& out) {
  float* mean = stats;
  float* inv_std = stats + s.batch * s.groups;
  GroupNormStats(s, x, epsilon, mean, inv_std);
  const int32_t per_group = s.channels / s.groups;
  const float count = static_cast<float>(s.spatial * per_group);
  if (out.grad_input != nullptr) {
    for (int32_t n = 0; n < s.batch; ++n) {
      const int32_t base = n * s.spatial * s.channels;
      for (int32_t g = 0; g < s.groups; ++g) {
        const int32_t k = n * s.groups + g;
        const int32_t c0 = g * per_group;
        float sum_dxhat = 0.0f, sum_dxhat_xhat = 0.0f;
        for (int32_t p = 0; p < s.spatial; ++p) {
          for (int32_t c = c0; c < c0 + per_group; ++c) {
            const int32_t i = base + p * s.channels + c;
            const float dxhat = MaskedValue(grad_output, mask, i) *
                                (gamma != nullptr ? gamma[c] : 1.0f);
            sum_dxhat += dxhat;
            sum_dxhat_xhat += dxhat * ((x[i] - mean[k]) * inv_std[k]);
          }
        }
        const float mean_dxhat = sum_dxhat / count;
        const float mean_dxhat_xhat = sum_dxhat_xhat / count;
        for (int32_t p = 0; p < s.spatial; ++p) {
          for (int32_t c = c0; c < c0 + per_group; ++c) {
            const int32_t i = base + p * s.channels + c;
            const float dxhat = MaskedValue(grad_output, mask, i) *
                                (gamma != nullptr ? gamma[c] : 1.0f);
            const float xhat = (x[i] - mean[k]) * inv_std[k];
            out.grad_input[i] =
                inv_std[k] * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
          }
        }
      }
    }
  }
  if (out.gamma == nullptr && out.beta == nullptr) return;
  for (int32_t c = 0; c < s.channels; ++c) {
    float dgamma = 0.0f, dbeta = 0.0f;
    for (int32_t n = 0; n < s.batch; ++n) {
      const int32_t k = n * s.groups + c / per_group;
      for (int32_t p = 0; p < s.spatial; ++p) {
        const int32_t i = (n * s.spatial + p) * s.channels + c;
        const float dy = MaskedValue(grad_output, mask, i);
        dgamma += dy * ((x[i] - mean[k]) * inv_std[k]);
        dbeta += dy;
      }
    }
    if (out.gamma != nullptr) {
      out.gamma[c] = SgdStep(out.gamma[c], dgamma, out.learning_rate);
    }
    if (out.beta != nullptr) {
      out.beta[c] = SgdStep(out.beta[c], dbeta, out.learning_rate);
    }
  }
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_GROUP_NORM_H_
