// TL_CONV_UPDATE: TFLite Micro adapter of reference/conv_update.h for CONV_2D
// (grouped too) and FULLY_CONNECTED (the 1x1 case, rank-2 tensors).
//
// The SGD step of a layer's trained parameters, in place on variable tensors.
// Inputs (grad_output, mask, input, channels, filter, filter_q, bias, bias_q
// [, input_grad_filter]) and the optional output (grad_input, the fused input
// gradient, computed first): see parameter_update.h.
// options: "channel_axis" (0: channels are output channels, 1: input
//          channels), "learning_rate", "padding" (0 VALID, 1 SAME), "qas"
//          (bool), "stride_h", "stride_w"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/parameter_update.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr const char* kOp = "TL_CONV_UPDATE";
constexpr size_t kChannelAxisIndex = 0;   // "channel_axis"
constexpr size_t kLearningRateIndex = 1;  // "learning_rate"
constexpr size_t kPaddingIndex = 2;       // "padding"
constexpr size_t kQasIndex = 3;           // "qas"
constexpr size_t kStrideHIndex = 4;       // "stride_h"
constexpr size_t kStrideWIndex = 5;       // "stride_w"
constexpr size_t kNumOptions = 6;

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<UpdateOpData*>(
      context->AllocatePersistentBuffer(context, sizeof(UpdateOpData)));
  if (data == nullptr) return nullptr;
  data->options_ok = OptionCount(buffer, length) == kNumOptions;
  if (!data->options_ok) return data;
  data->channel_axis = OptionAsInt32(buffer, length, kChannelAxisIndex);
  data->sgd.learning_rate = OptionAsFloat(buffer, length, kLearningRateIndex);
  data->sgd.qas = OptionAsBool(buffer, length, kQasIndex);
  const int32_t padding = OptionAsInt32(buffer, length, kPaddingIndex);
  data->conv.padding =
      padding == 1 ? reference::Padding::kSame : reference::Padding::kValid;
  data->conv.stride_h = OptionAsInt32(buffer, length, kStrideHIndex);
  data->conv.stride_w = OptionAsInt32(buffer, length, kStrideWIndex);
  data->options_ok = (padding == 0 || padding == 1) &&
                     (data->channel_axis == 0 || data->channel_axis == 1) &&
                     data->conv.stride_h > 0 && data->conv.stride_w > 0;
  return data;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  return PrepareUpdate(context, node, kOp, UpdateKind::kConv,
                       static_cast<UpdateOpData*>(node->user_data));
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  return EvalUpdate(context, node, kOp, UpdateKind::kConv,
                    static_cast<const UpdateOpData*>(node->user_data));
}

}  // namespace

TFLMRegistration* Register_TL_CONV_UPDATE() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Eval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
