// TL_DEPTHWISE_UPDATE: TFLite Micro adapter of reference/conv_update.h for
// DEPTHWISE_CONV_2D with depth multiplier 1 (filter [1, kh, kw, C]).
//
// The SGD step of a layer's trained parameters, in place on variable tensors.
// Inputs (grad_output, mask, input, channels, filter, filter_q, bias, bias_q
// [, input_grad_filter]) and the optional output (grad_input, the fused input
// gradient, computed first): see parameter_update.h; channels index C, the saved input is
// [N, H, W, C] or only the chosen channels [N, H, W, K], and the master of an
// int8 filter is [1, kh, kw, K].
// options: "learning_rate", "padding" (0 VALID, 1 SAME), "qas" (bool),
//          "stride_h", "stride_w"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/parameter_update.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr const char* kOp = "TL_DEPTHWISE_UPDATE";
constexpr size_t kLearningRateIndex = 0;  // "learning_rate"
constexpr size_t kPaddingIndex = 1;       // "padding"
constexpr size_t kQasIndex = 2;           // "qas"
constexpr size_t kStrideHIndex = 3;       // "stride_h"
constexpr size_t kStrideWIndex = 4;       // "stride_w"
constexpr size_t kNumOptions = 5;

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<UpdateOpData*>(
      context->AllocatePersistentBuffer(context, sizeof(UpdateOpData)));
  if (data == nullptr) return nullptr;
  data->channel_axis = 0;
  data->options_ok = OptionCount(buffer, length) == kNumOptions;
  if (!data->options_ok) return data;
  data->sgd.learning_rate = OptionAsFloat(buffer, length, kLearningRateIndex);
  data->sgd.qas = OptionAsBool(buffer, length, kQasIndex);
  const int32_t padding = OptionAsInt32(buffer, length, kPaddingIndex);
  data->conv.padding =
      padding == 1 ? reference::Padding::kSame : reference::Padding::kValid;
  data->conv.stride_h = OptionAsInt32(buffer, length, kStrideHIndex);
  data->conv.stride_w = OptionAsInt32(buffer, length, kStrideWIndex);
  data->options_ok = (padding == 0 || padding == 1) &&
                     data->conv.stride_h > 0 && data->conv.stride_w > 0;
  return data;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  return PrepareUpdate(context, node, kOp, UpdateKind::kDepthwise,
                       static_cast<UpdateOpData*>(node->user_data));
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  return EvalUpdate(context, node, kOp, UpdateKind::kDepthwise,
                    static_cast<const UpdateOpData*>(node->user_data));
}

}  // namespace

TFLMRegistration* Register_TL_DEPTHWISE_UPDATE() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Eval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
