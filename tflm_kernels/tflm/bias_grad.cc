// TL_BIAS_GRAD and TL_BIAS_GRAD_SGD: TFLite Micro adapters of
// reference/bias_grad.h.
//
// TL_BIAS_GRAD      in: grad_output f32 [..., C]     out: grad_bias f32 [C]
// TL_BIAS_GRAD_SGD  in: grad_output f32 [..., C], bias f32 [C]
//                   out: none  -> bias must be a variable tensor, updated in
//                                 place (no gradient buffer at all)
//                        new_bias f32 [C] -> functional form
//                   options: "learning_rate" (float)
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/bias_grad.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr int kGradOutputTensor = 0;
constexpr int kBiasTensor = 1;
constexpr int kOutputTensor = 0;
constexpr size_t kLearningRateIndex = 0;  // "learning_rate"

struct OpData {
  int32_t rows;
  int32_t channels;
  float learning_rate;
  bool has_learning_rate;
  bool in_place;
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data == nullptr) return nullptr;
  data->has_learning_rate = OptionCount(buffer, length) == 1;
  data->learning_rate =
      data->has_learning_rate
          ? OptionAsFloat(buffer, length, kLearningRateIndex)
          : 0.0f;
  return data;
}

TfLiteStatus CheckGradOutput(const char* op, const TfLiteTensor* grad_output,
                             OpData* data) {
  TL_TFLM_ENSURE(grad_output != nullptr && grad_output->type == kTfLiteFloat32,
                 "%s: grad_output must be float32", op);
  TL_TFLM_ENSURE(grad_output->dims->size >= 1, "%s: grad_output must have a "
                 "channel axis", op);
  data->channels = grad_output->dims->data[grad_output->dims->size - 1];
  TL_TFLM_ENSURE(data->channels > 0, "%s: grad_output has no channels", op);
  data->rows = static_cast<int32_t>(ElementCount(grad_output->dims) /
                                    data->channels);
  return kTfLiteOk;
}

TfLiteStatus CheckVector(const char* op, const char* what,
                         const TfLiteTensor* t, int32_t channels) {
  TL_TFLM_ENSURE(t != nullptr && t->type == kTfLiteFloat32 && HasRank(t, 1) &&
                     t->dims->data[0] == channels,
                 "%s: %s must be float32 [%d]", op, what,
                 static_cast<int>(channels));
  return kTfLiteOk;
}

TfLiteStatus BiasGradPrepare(TfLiteContext* context, TfLiteNode* node) {
  TL_TFLM_ENSURE(node->inputs->size == 1 && node->outputs->size == 1,
                 "TL_BIAS_GRAD: expects 1 input and 1 output, got %d and %d",
                 node->inputs->size, node->outputs->size);
  auto* data = static_cast<OpData*>(node->user_data);
  tflite::MicroContext* micro_context = tflite::GetMicroContext(context);
  TfLiteTensor* grad_output =
      micro_context->AllocateTempInputTensor(node, kGradOutputTensor);
  TfLiteTensor* grad_bias =
      micro_context->AllocateTempOutputTensor(node, kOutputTensor);
  TfLiteStatus status = CheckGradOutput("TL_BIAS_GRAD", grad_output, data);
  if (status == kTfLiteOk) {
    status = CheckVector("TL_BIAS_GRAD", "grad_bias", grad_bias, data->channels);
  }
  if (grad_output != nullptr) micro_context->DeallocateTempTfLiteTensor(grad_output);
  if (grad_bias != nullptr) micro_context->DeallocateTempTfLiteTensor(grad_bias);
  return status;
}

TfLiteStatus BiasGradEval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const TfLiteEvalTensor* grad_output =
      tflite::micro::GetEvalInput(context, node, kGradOutputTensor);
  TfLiteEvalTensor* grad_bias =
      tflite::micro::GetEvalOutput(context, node, kOutputTensor);
  reference::BiasGrad(tflite::micro::GetTensorData<float>(grad_output),
                      data->rows, data->channels,
                      tflite::micro::GetTensorData<float>(grad_bias));
  return kTfLiteOk;
}

TfLiteStatus BiasGradSgdPrepare(TfLiteContext* context, TfLiteNode* node) {
  constexpr const char* kOp = "TL_BIAS_GRAD_SGD";
  TL_TFLM_ENSURE(node->inputs->size == 2 && node->outputs->size <= 1,
                 "%s: expects 2 inputs and 0 (in place) or 1 output, got %d "
                 "and %d", kOp, node->inputs->size, node->outputs->size);
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr && data->has_learning_rate,
                 "%s: needs exactly one option, 'learning_rate'", kOp);
  data->in_place = node->outputs->size == 0;
  tflite::MicroContext* micro_context = tflite::GetMicroContext(context);
  TfLiteTensor* grad_output =
      micro_context->AllocateTempInputTensor(node, kGradOutputTensor);
  TfLiteTensor* bias = micro_context->AllocateTempInputTensor(node, kBiasTensor);
  TfLiteTensor* new_bias =
      data->in_place ? nullptr
                     : micro_context->AllocateTempOutputTensor(node, kOutputTensor);
  TfLiteStatus status = CheckGradOutput(kOp, grad_output, data);
  if (status == kTfLiteOk) status = CheckVector(kOp, "bias", bias, data->channels);
  if (status == kTfLiteOk && data->in_place && !bias->is_variable) {
    MicroPrintf("%s: without an output the bias is updated in place and must "
                "be a variable tensor", kOp);
    status = kTfLiteError;
  }
  if (status == kTfLiteOk && !data->in_place) {
    status = CheckVector(kOp, "new_bias", new_bias, data->channels);
  }
  if (grad_output != nullptr) micro_context->DeallocateTempTfLiteTensor(grad_output);
  if (bias != nullptr) micro_context->DeallocateTempTfLiteTensor(bias);
  if (new_bias != nullptr) micro_context->DeallocateTempTfLiteTensor(new_bias);
  return status;
}

TfLiteStatus BiasGradSgdEval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const TfLiteEvalTensor* grad_output =
      tflite::micro::GetEvalInput(context, node, kGradOutputTensor);
  float* bias;
  if (data->in_place) {
    bias = tflite::micro::GetTensorData<float>(
        tflite::micro::GetMutableEvalInput(context, node, kBiasTensor));
  } else {
    const float* old_bias = tflite::micro::GetTensorData<float>(
        tflite::micro::GetEvalInput(context, node, kBiasTensor));
    bias = tflite::micro::GetTensorData<float>(
        tflite::micro::GetEvalOutput(context, node, kOutputTensor));
    for (int32_t c = 0; c < data->channels; ++c) bias[c] = old_bias[c];
  }
  reference::BiasGradFusedSgd(tflite::micro::GetTensorData<float>(grad_output),
                              data->rows, data->channels, data->learning_rate,
                              bias, nullptr);
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_TL_BIAS_GRAD() {
  static TFLMRegistration r =
      tflite::micro::RegisterOp(Init, BiasGradPrepare, BiasGradEval);
  return &r;
}

TFLMRegistration* Register_TL_BIAS_GRAD_SGD() {
  static TFLMRegistration r =
      tflite::micro::RegisterOp(Init, BiasGradSgdPrepare, BiasGradSgdEval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
