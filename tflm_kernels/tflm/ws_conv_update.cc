// TL_WS_CONV_UPDATE: TFLite Micro adapter of reference/ws_conv_update.h, the
// backward step of a weight-standardised conv (tflite_tl.layers.WSConv2D)
// whose forward is TL_CONV with "standardize".
//
// Inputs by position, as TL_CONV_UPDATE's (parameter_update.h), restricted
// to a float layer trained whole: 0 grad_output f32, 1 [mask], 2 input f32
// (the saved layer input), 3 channels absent (-1), 4 filter f32 variable
// (the raw filter, updated in place), 5 filter_q absent, 6 [bias] f32
// variable, 7 bias_q absent, 8 [input_grad_filter] f32: TL_CONV's filter_hat
// output (the standardised filter the forward read), or the raw filter
// itself (the same tensor as input 4): the op then reads the standardised
// values on the fly from the raw filter and its row statistics (3 floats per
// output channel of scratch), bit-identical to TL_CONV's filter_hat, so the
// forward's filter_hat need not stay alive until the backward pass.
// Output (optional, with input 8): grad_input f32, written first through
// the standardised filter as TL_CONV_INPUT_GRAD does.
// options: "epsilon" (the standardisation's, >= 0), "learning_rate",
//          "padding" (0 VALID, 1 SAME), "stride_h", "stride_w"
// Scratch: one filter row (kh * kw * Ci / groups floats), or 3 floats per
// output channel if more when input 8 is the raw filter, in the arena's
// planned (head) part (alive during this op only).
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/ws_conv_update.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/parameter_update.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr const char* kOp = "TL_WS_CONV_UPDATE";
constexpr size_t kEpsilonIndex = 0;       // "epsilon"
constexpr size_t kLearningRateIndex = 1;  // "learning_rate"
constexpr size_t kPaddingIndex = 2;       // "padding"
constexpr size_t kStrideHIndex = 3;       // "stride_h"
constexpr size_t kStrideWIndex = 4;       // "stride_w"
constexpr size_t kNumOptions = 5;
constexpr int kGradOutputTensor = 0;
constexpr int kMaskTensor = 1;
constexpr int kInputTensor = 2;
constexpr int kChannelsTensor = 3;
constexpr int kFilterTensor = 4;
constexpr int kFilterQTensor = 5;
constexpr int kBiasTensor = 6;
constexpr int kBiasQTensor = 7;
constexpr int kInputGradFilterTensor = 8;
constexpr int kGradInputTensor = 0;

struct OpData {
  UpdateOpData update;
  float epsilon;
  // Input 8 is the raw filter: w_hat is recomputed into the scratch.
  bool standardize_for_input_grad;
  int scratch_index;
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data == nullptr) return nullptr;
  UpdateOpData& u = data->update;
  u.options_ok = OptionCount(buffer, length) == kNumOptions;
  if (!u.options_ok) return data;
  data->epsilon = OptionAsFloat(buffer, length, kEpsilonIndex);
  u.channel_axis = 0;
  u.sgd.learning_rate = OptionAsFloat(buffer, length, kLearningRateIndex);
  u.sgd.qas = true;
  const int32_t padding = OptionAsInt32(buffer, length, kPaddingIndex);
  u.conv.padding =
      padding == 1 ? reference::Padding::kSame : reference::Padding::kValid;
  u.conv.stride_h = OptionAsInt32(buffer, length, kStrideHIndex);
  u.conv.stride_w = OptionAsInt32(buffer, length, kStrideWIndex);
  u.options_ok = data->epsilon >= 0.0f && (padding == 0 || padding == 1) &&
                 u.conv.stride_h > 0 && u.conv.stride_w > 0;
  return data;
}

bool Absent(const TfLiteNode* node, int index) {
  return node->inputs->data[index] == kTfLiteOptionalTensor;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", kOp);
  TL_TFLM_ENSURE(data->update.options_ok,
                 "%s: options must be epsilon (>= 0), learning_rate, padding "
                 "(0/1), stride_h, stride_w (positive)", kOp);
  TF_LITE_ENSURE_OK(context, PrepareUpdate(context, node, kOp,
                                           UpdateKind::kConv, &data->update));
  TL_TFLM_ENSURE(!Absent(node, kFilterTensor) &&
                     !Absent(node, kInputTensor) &&
                     Absent(node, kChannelsTensor) &&
                     Absent(node, kFilterQTensor) && Absent(node, kBiasQTensor),
                 "%s: trains the whole float filter: needs input (2) and "
                 "filter (4); channels (3), filter_q (5) and bias_q (7) must "
                 "be absent", kOp);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* input = mc->AllocateTempInputTensor(node, kInputTensor);
  const bool float_input = input != nullptr && input->type == kTfLiteFloat32;
  if (input != nullptr) mc->DeallocateTempTfLiteTensor(input);
  TL_TFLM_ENSURE(float_input, "%s: input (2) must be float32", kOp);
  data->standardize_for_input_grad =
      data->update.has_input_grad &&
      node->inputs->data[kInputGradFilterTensor] ==
          node->inputs->data[kFilterTensor];
  const int32_t floats = reference::StandardizedConvOpScratch(
      data->update.geometry, data->standardize_for_input_grad);
  TL_TFLM_ENSURE(
      context->RequestScratchBufferInArena(
          context, static_cast<size_t>(floats) * sizeof(float),
          &data->scratch_index) == kTfLiteOk,
      "%s: no arena for the %d-float filter scratch", kOp,
      static_cast<int>(floats));
  return kTfLiteOk;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const UpdateOpData& u = data->update;
  using tflite::micro::GetEvalInput;
  using tflite::micro::GetMutableEvalInput;
  float* scratch = static_cast<float*>(
      context->GetScratchBuffer(context, data->scratch_index));
  const float* grad_output = tflite::micro::GetTensorData<float>(
      GetEvalInput(context, node, kGradOutputTensor));
  const uint8_t* mask = tflite::micro::GetOptionalTensorData<uint8_t>(
      GetEvalInput(context, node, kMaskTensor));
  float* filter = tflite::micro::GetTensorData<float>(
      GetMutableEvalInput(context, node, kFilterTensor));
  if (data->standardize_for_input_grad) {
    // Before the step: the input gradient of the step's starting w_hat,
    // recomputed from the raw filter.
    reference::StandardizedConvInputGrad(
        u.geometry, grad_output, mask, filter, data->epsilon, scratch,
        tflite::micro::GetTensorData<float>(
            tflite::micro::GetEvalOutput(context, node, kGradInputTensor)));
  } else if (u.has_input_grad) {
    // Before the step: the input gradient of the step's starting w_hat.
    TF_LITE_ENSURE_OK(context, EvalUpdateInputGrad(context, node, kOp,
                                                   UpdateKind::kConv, &u));
  }
  reference::StandardizedConvUpdate(
      u.geometry, grad_output, mask,
      tflite::micro::GetTensorData<float>(
          GetEvalInput(context, node, kInputTensor)),
      data->epsilon, u.sgd.learning_rate, filter,
      tflite::micro::GetOptionalTensorData<float>(
          GetMutableEvalInput(context, node, kBiasTensor)),
      scratch);
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_TL_WS_CONV_UPDATE() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Eval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
