// TL_WEIGHT_STANDARDIZE and TL_WEIGHT_STANDARDIZE_GRAD: TFLite Micro adapters
// of reference/weight_standardize.h (a weight-standardised conv's filter,
// tflite_tl.layers.WSConv2D).
//
// TL_WEIGHT_STANDARDIZE       in:  w f32 OHWI [Co, kh, kw, Ci / groups] (or
//                                  [Co, Ci]; the trained raw filter, a
//                                  variable tensor)
//                             out: w_hat f32, w's shape (what CONV_2D reads)
//                             options: "epsilon"
// TL_WEIGHT_STANDARDIZE_GRAD  in:  w f32 OHWI, grad_w_hat f32 (w's shape: the
//                                  weight gradient of the conv)
//                             out: grad_w f32, w's shape
//                             options: "epsilon"
// Statistics per output channel over its kh * kw * Ci / groups fan-in; the
// gradient recomputes them from w (no scratch, no saved statistics).
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/weight_standardize.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr size_t kEpsilonIndex = 0;  // "epsilon"

struct OpData {
  bool options_ok;
  float epsilon;
  int32_t out_channels;
  int32_t fan_in;
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data == nullptr) return nullptr;
  data->options_ok = OptionCount(buffer, length) == 1;
  if (data->options_ok) {
    data->epsilon = OptionAsFloat(buffer, length, kEpsilonIndex);
    data->options_ok = data->epsilon >= 0.0f;
  }
  return data;
}

// `t` is float32 with w's shape.
TfLiteStatus SameShape(const char* op, const char* what, const TfLiteTensor* t,
                       const TfLiteTensor* w) {
  bool same = t != nullptr && t->type == kTfLiteFloat32 &&
              t->dims->size == w->dims->size;
  for (int i = 0; same && i < w->dims->size; ++i) {
    same = t->dims->data[i] == w->dims->data[i];
  }
  TL_TFLM_ENSURE(same, "%s: %s must be float32 with w's shape", op, what);
  return kTfLiteOk;
}

// Checks the options, w and every other tensor (w's shape); records the
// filter's [out_channels, fan_in] view.
TfLiteStatus Validate(const char* op, OpData* data, const TfLiteTensor* w,
                      const char* const* names, TfLiteTensor* const* others,
                      int num_others) {
  TL_TFLM_ENSURE(data->options_ok, "%s: needs one option, epsilon (>= 0)", op);
  int32_t d[4];
  TL_TFLM_ENSURE(w != nullptr && w->type == kTfLiteFloat32 && Dims4(w, d) &&
                     d[0] > 0 && d[1] * d[2] * d[3] > 0,
                 "%s: w must be float32 OHWI [Co, kh, kw, Ci] (or [Co, Ci]), "
                 "got %s of rank %d", op,
                 w == nullptr ? "none" : TfLiteTypeGetName(w->type),
                 w == nullptr || w->dims == nullptr ? 0 : w->dims->size);
  data->out_channels = d[0];
  data->fan_in = d[1] * d[2] * d[3];
  for (int i = 0; i < num_others; ++i) {
    TF_LITE_ENSURE_STATUS(SameShape(op, names[i], others[i], w));
  }
  return kTfLiteOk;
}

// Prepare of both ops: `num_inputs` inputs (w first), one output.
TfLiteStatus PrepareWith(const char* op, TfLiteContext* context,
                         TfLiteNode* node, int num_inputs,
                         const char* const* names) {
  TL_TFLM_ENSURE(node->inputs->size == num_inputs && node->outputs->size == 1,
                 "%s: expects %d input(s) and 1 output, got %d and %d", op,
                 num_inputs, node->inputs->size, node->outputs->size);
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", op);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* tensors[3] = {nullptr, nullptr, nullptr};
  for (int i = 0; i < num_inputs; ++i) {
    tensors[i] = mc->AllocateTempInputTensor(node, i);
  }
  tensors[num_inputs] = mc->AllocateTempOutputTensor(node, 0);
  const TfLiteStatus status =
      Validate(op, data, tensors[0], names, tensors + 1, num_inputs);
  for (TfLiteTensor* t : tensors) {
    if (t != nullptr) mc->DeallocateTempTfLiteTensor(t);
  }
  return status;
}

constexpr const char* kForwardOp = "TL_WEIGHT_STANDARDIZE";
constexpr const char* kGradOp = "TL_WEIGHT_STANDARDIZE_GRAD";

TfLiteStatus ForwardPrepare(TfLiteContext* context, TfLiteNode* node) {
  static const char* const kNames[] = {"w_hat"};
  return PrepareWith(kForwardOp, context, node, 1, kNames);
}

TfLiteStatus ForwardEval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  reference::WeightStandardize(
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalInput(context, node, 0)),
      data->out_channels, data->fan_in, data->epsilon,
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalOutput(context, node, 0)));
  return kTfLiteOk;
}

TfLiteStatus GradPrepare(TfLiteContext* context, TfLiteNode* node) {
  static const char* const kNames[] = {"grad_w_hat", "grad_w"};
  return PrepareWith(kGradOp, context, node, 2, kNames);
}

TfLiteStatus GradEval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  reference::WeightStandardizeGrad(
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalInput(context, node, 0)),
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalInput(context, node, 1)),
      data->out_channels, data->fan_in, data->epsilon,
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalOutput(context, node, 0)));
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_TL_WEIGHT_STANDARDIZE() {
  static TFLMRegistration r =
      tflite::micro::RegisterOp(Init, ForwardPrepare, ForwardEval);
  return &r;
}

TFLMRegistration* Register_TL_WEIGHT_STANDARDIZE_GRAD() {
  static TFLMRegistration r =
      tflite::micro::RegisterOp(Init, GradPrepare, GradEval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
