#include "tflm_kernels/reference/depthwise_chain_update.h"

#include "tflm_kernels/codesize/entry_points.h"

using tflite_tl::reference::ChainDownstream;
using tflite_tl::reference::ChainUpstream;
using tflite_tl::reference::ConvGeometry;
using tflite_tl::reference::SgdOptions;
using tflite_tl::reference::TrainedParameters;

void tl_depthwise_chain_update(const ConvGeometry* g, const float* grad_output,
                               const uint8_t* mask, const float* filter,
                               const SgdOptions* sgd,
                               const TrainedParameters* dw,
                               const ChainUpstream<float>* up, float* scratch,
                               const ChainDownstream<float>* ds) {
  tflite_tl::reference::DepthwiseChainUpdate<float, float>(
      *g, grad_output, mask, filter, nullptr, *sgd, *dw, *up, scratch, ds);
}

void tl_depthwise_chain_update_int8(const ConvGeometry* g,
                                    const float* grad_output,
                                    const uint8_t* mask, const int8_t* filter,
                                    const float* scales, const SgdOptions* sgd,
                                    const TrainedParameters* dw,
                                    const ChainUpstream<int8_t>* up,
                                    float* scratch,
                                    const ChainDownstream<int8_t>* ds) {
  tflite_tl::reference::DepthwiseChainUpdate<int8_t, int8_t>(
      *g, grad_output, mask, filter, scales, *sgd, *dw, *up, scratch, ds);
}
