// Shared Prepare/Eval of TL_CONV_UPDATE and TL_DEPTHWISE_UPDATE (adapters of
// reference/conv_update.h). Each op's file parses its options and forwards.
//
// Inputs by position (an absent optional input is -1), no outputs:
//   0 grad_output f32 [N, Ho, Wo, Co] ([N, Co] for a fully connected layer)
//   1 mask uint8 [ceil(size / 8)] (optional): 1-bit mask of the layer's
//     output activation, applied to grad_output
//   2 input f32 or int8 (required iff a filter is trained): the saved layer
//     input [N, H, W, Ci], or (channel_axis 1 / depthwise, channels given)
//     only the chosen channels [N, H, W, K], in list order
//   3 channels int32 [K] (optional, may be a variable tensor): trained output
//     channels (channel_axis 0), input channels (1), or depthwise channels;
//     absent means all
//   4 filter f32 variable (optional): the full filter, or with filter_q the
//     float master of the chosen channels ([K, kh, kw, Ci/g] for axis 0,
//     [Co, kh, kw, K] for axis 1, [1, kh, kw, K] for depthwise)
//   5 filter_q int8 variable (optional): the int8 forward's per-channel
//     filter, re-quantized from the master
//   6 bias f32 variable [Co] (optional)
//   7 bias_q int32 variable [Co] (optional, needs bias): the int8 forward's
//     bias, rewritten from the float bias
//   8 input_grad_filter (optional, with output 0): the filter the forward
//     reads, int8 per-channel (zero points 0) or float32, constant or one of
//     the variables above; OHWI [Co, kh, kw, Ci/g] ([Co, Ci]), depthwise
//     [1, kh, kw, C]
// Output (optional, with input 8): 0 grad_input f32 [N, H, W, Ci] ([N, Ci]),
//   the layer's input gradient through input_grad_filter with the mask
//   applied (TL_CONV_INPUT_GRAD / TL_DEPTHWISE_INPUT_GRAD), computed before
//   the update: the step's starting parameters, one op per layer and step.
#ifndef TFLM_KERNELS_TFLM_PARAMETER_UPDATE_H_
#define TFLM_KERNELS_TFLM_PARAMETER_UPDATE_H_

#include <stdint.h>

#include "tensorflow/lite/c/common.h"
#include "tflm_kernels/reference/activation_quantization.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/conv_update.h"
#include "tflm_kernels/tflm/op_utils.h"

namespace tflite_tl {
namespace tflm {

enum class UpdateKind { kConv, kDepthwise };

struct UpdateOpData {
  // Set by the op's Init.
  bool options_ok;
  ConvOptions conv;
  reference::SgdOptions sgd;
  int32_t channel_axis;  // always 0 for depthwise
  // Set by PrepareUpdate.
  bool trains_filter;
  reference::ConvGeometry geometry;
  reference::ActivationQuantization quant;
  int32_t input_depth;   // channels of the saved input tensor
  int32_t num_channels;  // K, or every channel of the axis without a list
  int32_t axis_size;
  int32_t rows;          // grad_output as [rows, out_channels]
  int32_t out_channels;
  float* filter_scales;  // with filter_q
  float* bias_scales;    // with bias_q
  bool has_input_grad;   // input 8 and output 0 (the fused input gradient)
  float* input_grad_scales;  // int8 input_grad_filter only
};

// Validates the 8 inputs (9 and the output with the fused input gradient)
// and fills `data` (allocates only the persistent scale copies).
// The trained parameters an update op steps in place, read at Eval: the
// float filter (or master) and the float bias and its int32 copy at the
// node's input positions (an absent optional input, or a position < 0,
// gives null), filter_q and the scales as the caller has them.
reference::TrainedParameters EvalTrainedParameters(
    TfLiteContext* context, TfLiteNode* node, int filter_index,
    int8_t* filter_q, const float* filter_scales, int bias_index,
    int bias_q_index, const float* bias_scales);

TfLiteStatus PrepareUpdate(TfLiteContext* context, TfLiteNode* node,
                           const char* op_name, UpdateKind kind,
                           UpdateOpData* data);

// Runs the update; fails (MicroPrintf) on a channel index out of range.
TfLiteStatus EvalUpdate(TfLiteContext* context, TfLiteNode* node,
                        const char* op_name, UpdateKind kind,
                        const UpdateOpData* data);

// Only the fused input gradient of EvalUpdate (output 0 through input 8;
// needs data->has_input_grad): for an op with its own update step
// (TL_WS_CONV_UPDATE), run before that step.
TfLiteStatus EvalUpdateInputGrad(TfLiteContext* context, TfLiteNode* node,
                                 const char* op_name, UpdateKind kind,
                                 const UpdateOpData* data);

}  // namespace tflm
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_TFLM_PARAMETER_UPDATE_H_
