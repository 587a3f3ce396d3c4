#include "tflm_kernels/reference/conv_update.h"

#include "tflm_kernels/codesize/entry_points.h"

using tflite_tl::reference::ConvGeometry;
using tflite_tl::reference::SgdOptions;
using tflite_tl::reference::TrainedParameters;

bool tl_depthwise_update(const ConvGeometry* g, const float* grad_output,
                         const uint8_t* mask, const float* input,
                         int32_t input_depth, const int32_t* channels,
                         int32_t num_channels, const SgdOptions* sgd,
                         const TrainedParameters* p) {
  return tflite_tl::reference::DepthwiseUpdate<float>(
      *g, grad_output, mask, input, tflite_tl::reference::kNoQuantization,
      input_depth, channels, num_channels, *sgd, *p);
}

bool tl_depthwise_update_int8(const ConvGeometry* g, const float* grad_output,
                              const uint8_t* mask, const int8_t* input,
                              float input_scale, int32_t input_zero_point,
                              int32_t input_depth, const int32_t* channels,
                              int32_t num_channels, const SgdOptions* sgd,
                              const TrainedParameters* p) {
  return tflite_tl::reference::DepthwiseUpdate<int8_t>(
      *g, grad_output, mask, input, {input_scale, input_zero_point},
      input_depth, channels, num_channels, *sgd, *p);
}
