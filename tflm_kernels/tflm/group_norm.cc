// TL_GROUPNORM and TL_GROUPNORM_GRAD: TFLite Micro adapters of
// reference/group_norm.h (tf-keras GroupNormalization on NHWC tensors).
//
// TL_GROUPNORM       in:  x f32 [N, H, W, C], [gamma] f32 [C], [beta] f32 [C]
//                    out: y f32, x's shape
//                    options: "epsilon", "groups"
// TL_GROUPNORM_GRAD  in:  grad_output f32 [N, H, W, C], [mask] uint8 (1-bit
//                         mask of the layer's output activation), x f32 (the
//                         saved forward input), [gamma] f32 [C] (variable:
//                         trained in place; constant: frozen; absent: 1),
//                         [beta] f32 [C] (variable, trained in place)
//                    out: [grad_input] f32, x's shape (dx from gamma before
//                         its update; 0 outputs or -1 when not needed)
//                    options: "epsilon", "groups", "learning_rate"
// Absent optional inputs are -1. Mean and variance are recomputed from x into
// a scratch buffer of 2 * N * groups floats (no statistics tensor).
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/group_norm.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr size_t kEpsilonIndex = 0;       // "epsilon"
constexpr size_t kGroupsIndex = 1;        // "groups"
constexpr size_t kLearningRateIndex = 2;  // "learning_rate"

struct OpData {
  bool options_ok;
  float epsilon;
  int32_t groups;
  float learning_rate;
  reference::GroupNormShape shape;
  int stats_buffer;  // scratch buffer index: mean and inv_std per (n, group)
  bool grad_input, train_gamma, train_beta, has_gamma;
};

void* InitWith(TfLiteContext* context, const char* buffer, size_t length,
               size_t num_options) {
  auto* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data == nullptr) return nullptr;
  data->options_ok = OptionCount(buffer, length) == num_options;
  if (!data->options_ok) return data;
  data->epsilon = OptionAsFloat(buffer, length, kEpsilonIndex);
  data->groups = OptionAsInt32(buffer, length, kGroupsIndex);
  data->learning_rate =
      num_options == 3 ? OptionAsFloat(buffer, length, kLearningRateIndex) : 0.0f;
  data->options_ok = data->epsilon >= 0.0f && data->groups > 0;
  return data;
}

void* ForwardInit(TfLiteContext* context, const char* buffer, size_t length) {
  return InitWith(context, buffer, length, 2);
}

void* GradInit(TfLiteContext* context, const char* buffer, size_t length) {
  return InitWith(context, buffer, length, 3);
}

// x's shape as [N, H*W, C] and the group count; requests the stats scratch.
TfLiteStatus PrepareShape(TfLiteContext* context, const char* op,
                          const TfLiteTensor* x, OpData* data) {
  int32_t d[4];
  TL_TFLM_ENSURE(x != nullptr && x->type == kTfLiteFloat32 && Dims4(x, d),
                 "%s: x must be float32 NHWC (or [N, C])", op);
  TL_TFLM_ENSURE(d[3] % data->groups == 0,
                 "%s: %d channels do not split into %d groups", op,
                 static_cast<int>(d[3]), static_cast<int>(data->groups));
  data->shape = {d[0], d[1] * d[2], d[3], data->groups};
  const size_t bytes = sizeof(float) * 2 * static_cast<size_t>(d[0]) *
                       static_cast<size_t>(data->groups);
  TL_TFLM_ENSURE(context->RequestScratchBufferInArena(context, bytes,
                                                      &data->stats_buffer) ==
                     kTfLiteOk,
                 "%s: arena too small for %d bytes of statistics", op,
                 static_cast<int>(bytes));
  return kTfLiteOk;
}

TfLiteStatus CheckChannelVector(const char* op, const char* what,
                                const TfLiteTensor* t, int32_t channels) {
  TL_TFLM_ENSURE(t == nullptr || (t->type == kTfLiteFloat32 && HasRank(t, 1) &&
                                  t->dims->data[0] == channels),
                 "%s: %s must be float32 [%d]", op, what,
                 static_cast<int>(channels));
  return kTfLiteOk;
}

TfLiteStatus SameShape(const char* op, const char* what, const TfLiteTensor* t,
                       const TfLiteTensor* like) {
  bool same = t != nullptr && t->type == kTfLiteFloat32 &&
              t->dims->size == like->dims->size;
  for (int i = 0; same && i < like->dims->size; ++i) {
    same = t->dims->data[i] == like->dims->data[i];
  }
  TL_TFLM_ENSURE(same, "%s: %s must be float32 with x's shape", op, what);
  return kTfLiteOk;
}

// ---- TL_GROUPNORM

constexpr const char* kForwardOp = "TL_GROUPNORM";

TfLiteStatus ValidateForward(TfLiteContext* context, OpData* data,
                             TfLiteTensor* const* in, const TfLiteTensor* y) {
  TL_TFLM_ENSURE(data->options_ok,
                 "%s: options must be epsilon (>= 0) and groups (> 0)",
                 kForwardOp);
  TF_LITE_ENSURE_OK(context, PrepareShape(context, kForwardOp, in[0], data));
  TF_LITE_ENSURE_OK(context, CheckChannelVector(kForwardOp, "gamma", in[1],
                                                data->shape.channels));
  TF_LITE_ENSURE_OK(context, CheckChannelVector(kForwardOp, "beta", in[2],
                                                data->shape.channels));
  return SameShape(kForwardOp, "y", y, in[0]);
}

TfLiteStatus ForwardPrepare(TfLiteContext* context, TfLiteNode* node) {
  TL_TFLM_ENSURE(node->inputs->size == 3 && node->outputs->size == 1,
                 "%s: expects 3 inputs (x, gamma, beta; absent ones -1) and 1 "
                 "output, got %d and %d", kForwardOp, node->inputs->size,
                 node->outputs->size);
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", kForwardOp);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* in[3];
  for (int i = 0; i < 3; ++i) in[i] = mc->AllocateTempInputTensor(node, i);
  TfLiteTensor* y = mc->AllocateTempOutputTensor(node, 0);
  const TfLiteStatus status = ValidateForward(context, data, in, y);
  for (TfLiteTensor* t : {in[0], in[1], in[2], y}) {
    if (t != nullptr) mc->DeallocateTempTfLiteTensor(t);
  }
  return status;
}

TfLiteStatus ForwardEval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  using tflite::micro::GetEvalInput;
  using tflite::micro::GetOptionalTensorData;
  reference::GroupNorm(
      data->shape,
      tflite::micro::GetTensorData<float>(GetEvalInput(context, node, 0)),
      GetOptionalTensorData<float>(GetEvalInput(context, node, 1)),
      GetOptionalTensorData<float>(GetEvalInput(context, node, 2)),
      data->epsilon,
      static_cast<float*>(context->GetScratchBuffer(context, data->stats_buffer)),
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalOutput(context, node, 0)));
  return kTfLiteOk;
}

// ---- TL_GROUPNORM_GRAD

constexpr const char* kGradOp = "TL_GROUPNORM_GRAD";
constexpr int kGradOutputTensor = 0;
constexpr int kMaskTensor = 1;
constexpr int kXTensor = 2;
constexpr int kGammaTensor = 3;
constexpr int kBetaTensor = 4;

TfLiteStatus ValidateGrad(TfLiteContext* context, OpData* data,
                          TfLiteTensor* const* in,
                          const TfLiteTensor* grad_input) {
  TL_TFLM_ENSURE(data->options_ok,
                 "%s: options must be epsilon (>= 0), groups (> 0) and "
                 "learning_rate", kGradOp);
  const TfLiteTensor* x = in[kXTensor];
  TF_LITE_ENSURE_OK(context, PrepareShape(context, kGradOp, x, data));
  TF_LITE_ENSURE_OK(context, SameShape(kGradOp, "grad_output",
                                       in[kGradOutputTensor], x));
  TF_LITE_ENSURE_OK(context, CheckMask(kGradOp, in[kMaskTensor],
                                       ElementCount(x->dims)));
  const int32_t channels = data->shape.channels;
  TF_LITE_ENSURE_OK(context, CheckChannelVector(kGradOp, "gamma",
                                                in[kGammaTensor], channels));
  TF_LITE_ENSURE_OK(context, CheckChannelVector(kGradOp, "beta",
                                                in[kBetaTensor], channels));
  data->has_gamma = in[kGammaTensor] != nullptr;
  data->train_gamma = data->has_gamma && in[kGammaTensor]->is_variable;
  data->train_beta = in[kBetaTensor] != nullptr;
  TL_TFLM_ENSURE(!data->train_beta || in[kBetaTensor]->is_variable,
                 "%s: beta is only an input to be trained: it must be a "
                 "variable tensor", kGradOp);
  data->grad_input = grad_input != nullptr;
  if (data->grad_input) {
    TF_LITE_ENSURE_OK(context, SameShape(kGradOp, "grad_input", grad_input, x));
  }
  TL_TFLM_ENSURE(data->grad_input || data->train_gamma || data->train_beta,
                 "%s: nothing to compute: no grad_input output and neither "
                 "gamma nor beta is a variable tensor", kGradOp);
  return kTfLiteOk;
}

TfLiteStatus GradPrepare(TfLiteContext* context, TfLiteNode* node) {
  TL_TFLM_ENSURE(node->inputs->size == 5 && node->outputs->size <= 1,
                 "%s: expects 5 inputs (grad_output, mask, x, gamma, beta; "
                 "absent ones -1) and 0 or 1 output, got %d and %d", kGradOp,
                 node->inputs->size, node->outputs->size);
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", kGradOp);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* in[5];
  for (int i = 0; i < 5; ++i) in[i] = mc->AllocateTempInputTensor(node, i);
  TfLiteTensor* grad_input =
      node->outputs->size == 1 ? mc->AllocateTempOutputTensor(node, 0) : nullptr;
  const TfLiteStatus status = ValidateGrad(context, data, in, grad_input);
  for (TfLiteTensor* t : in) {
    if (t != nullptr) mc->DeallocateTempTfLiteTensor(t);
  }
  if (grad_input != nullptr) mc->DeallocateTempTfLiteTensor(grad_input);
  return status;
}

TfLiteStatus GradEval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  using tflite::micro::GetEvalInput;
  using tflite::micro::GetMutableEvalInput;
  using tflite::micro::GetOptionalTensorData;
  reference::NormGradOutputs out;
  out.grad_input = data->grad_input
                       ? tflite::micro::GetTensorData<float>(
                             tflite::micro::GetEvalOutput(context, node, 0))
                       : nullptr;
  float* gamma = GetOptionalTensorData<float>(
      GetMutableEvalInput(context, node, kGammaTensor));
  out.gamma = data->train_gamma ? gamma : nullptr;
  out.beta = data->train_beta
                 ? GetOptionalTensorData<float>(
                       GetMutableEvalInput(context, node, kBetaTensor))
                 : nullptr;
  out.learning_rate = data->learning_rate;
  reference::GroupNormGrad(
      data->shape,
      tflite::micro::GetTensorData<float>(
          GetEvalInput(context, node, kGradOutputTensor)),
      GetOptionalTensorData<uint8_t>(GetEvalInput(context, node, kMaskTensor)),
      tflite::micro::GetTensorData<float>(GetEvalInput(context, node, kXTensor)),
      gamma, data->epsilon,
      static_cast<float*>(context->GetScratchBuffer(context, data->stats_buffer)),
      out);
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_TL_GROUPNORM() {
  static TFLMRegistration r =
      tflite::micro::RegisterOp(ForwardInit, ForwardPrepare, ForwardEval);
  return &r;
}

TFLMRegistration* Register_TL_GROUPNORM_GRAD() {
  static TFLMRegistration r =
      tflite::micro::RegisterOp(GradInit, GradPrepare, GradEval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
