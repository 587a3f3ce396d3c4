// TL_SOFTMAX_XENT: TFLite Micro adapter of reference/softmax_xent.h.
//
// in:  logits f32 [N, K], labels int32 [N] (class indices)
// out: loss f32 [1] (mean cross-entropy against the smoothed targets),
//      grad_logits f32 [N, K] = (softmax - targets) / N; all zeros if a logit
//      or the loss is not finite (the loss output then carries it)
// options: "label_smoothing" (float in [0, 1))
// A label outside [0, K) fails the invoke, naming the sample and the label.
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/softmax_xent.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr const char* kOp = "TL_SOFTMAX_XENT";
constexpr int kLogitsTensor = 0;
constexpr int kLabelsTensor = 1;
constexpr int kLossTensor = 0;
constexpr int kGradLogitsTensor = 1;
constexpr size_t kLabelSmoothingIndex = 0;  // "label_smoothing"

struct OpData {
  bool options_ok;
  float label_smoothing;
  int32_t batch;
  int32_t classes;
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data == nullptr) return nullptr;
  data->options_ok = OptionCount(buffer, length) == 1;
  if (data->options_ok) {
    data->label_smoothing = OptionAsFloat(buffer, length, kLabelSmoothingIndex);
    data->options_ok =
        data->label_smoothing >= 0.0f && data->label_smoothing < 1.0f;
  }
  return data;
}

TfLiteStatus Validate(OpData* data, const TfLiteTensor* logits,
                      const TfLiteTensor* labels, const TfLiteTensor* loss,
                      const TfLiteTensor* grad_logits) {
  TL_TFLM_ENSURE(data->options_ok,
                 "%s: needs one option, label_smoothing in [0, 1)", kOp);
  TL_TFLM_ENSURE(logits != nullptr && logits->type == kTfLiteFloat32 &&
                     HasRank(logits, 2) && logits->dims->data[0] > 0 &&
                     logits->dims->data[1] > 0,
                 "%s: logits must be float32 [N, K]", kOp);
  data->batch = logits->dims->data[0];
  data->classes = logits->dims->data[1];
  TL_TFLM_ENSURE(labels != nullptr && labels->type == kTfLiteInt32 &&
                     HasRank(labels, 1) && labels->dims->data[0] == data->batch,
                 "%s: labels must be int32 [%d] (class indices)", kOp,
                 static_cast<int>(data->batch));
  TL_TFLM_ENSURE(loss != nullptr && loss->type == kTfLiteFloat32 &&
                     ElementCount(loss->dims) == 1,
                 "%s: loss must be float32 [1]", kOp);
  TL_TFLM_ENSURE(grad_logits != nullptr &&
                     grad_logits->type == kTfLiteFloat32 &&
                     HasRank(grad_logits, 2) &&
                     grad_logits->dims->data[0] == data->batch &&
                     grad_logits->dims->data[1] == data->classes,
                 "%s: grad_logits must be float32 [%d, %d]", kOp,
                 static_cast<int>(data->batch), static_cast<int>(data->classes));
  return kTfLiteOk;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  TL_TFLM_ENSURE(node->inputs->size == 2 && node->outputs->size == 2,
                 "%s: expects 2 inputs (logits, labels) and 2 outputs (loss, "
                 "grad_logits), got %d and %d", kOp, node->inputs->size,
                 node->outputs->size);
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", kOp);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* logits = mc->AllocateTempInputTensor(node, kLogitsTensor);
  TfLiteTensor* labels = mc->AllocateTempInputTensor(node, kLabelsTensor);
  TfLiteTensor* loss = mc->AllocateTempOutputTensor(node, kLossTensor);
  TfLiteTensor* grad = mc->AllocateTempOutputTensor(node, kGradLogitsTensor);
  const TfLiteStatus status = Validate(data, logits, labels, loss, grad);
  for (TfLiteTensor* t : {logits, labels, loss, grad}) {
    if (t != nullptr) mc->DeallocateTempTfLiteTensor(t);
  }
  return status;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const int32_t* labels = tflite::micro::GetTensorData<int32_t>(
      tflite::micro::GetEvalInput(context, node, kLabelsTensor));
  const bool ok = reference::SoftmaxCrossEntropy(
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalInput(context, node, kLogitsTensor)),
      labels, data->batch, data->classes, data->label_smoothing,
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalOutput(context, node, kLossTensor)),
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalOutput(context, node, kGradLogitsTensor)));
  if (!ok) {
    const int32_t n =
        reference::FirstLabelOutOfRange(labels, data->batch, data->classes);
    MicroPrintf("%s: label %d of sample %d is outside [0, %d) (K = %d classes)",
                kOp, static_cast<int>(labels[n]), static_cast<int>(n),
                static_cast<int>(data->classes), static_cast<int>(data->classes));
    return kTfLiteError;
  }
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_TL_SOFTMAX_XENT() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Eval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
