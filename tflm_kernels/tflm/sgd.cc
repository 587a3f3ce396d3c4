// TL_SGD_UPDATE: TFLite Micro adapter of reference/sgd.h.
//
// in:  weights f32, grad f32 (same shape), [velocity f32 (same shape)]
// out: none            -> in place: weights (and velocity) must be variable
//                         tensors; the usual on-device form
//      new_weights[, new_velocity] -> functional form
// options: "learning_rate" (float), "momentum" (float; non-zero needs the
//          velocity input)
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/sgd.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr const char* kOp = "TL_SGD_UPDATE";
constexpr int kWeightsTensor = 0;
constexpr int kGradTensor = 1;
constexpr int kVelocityTensor = 2;
constexpr size_t kLearningRateIndex = 0;  // "learning_rate"
constexpr size_t kMomentumIndex = 1;      // "momentum"

struct OpData {
  bool options_ok;
  float learning_rate;
  float momentum;
  int32_t size;
  bool in_place;
  bool has_velocity;
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data != nullptr) {
    data->options_ok = OptionCount(buffer, length) == 2;
    if (data->options_ok) {
      data->learning_rate = OptionAsFloat(buffer, length, kLearningRateIndex);
      data->momentum = OptionAsFloat(buffer, length, kMomentumIndex);
    }
  }
  return data;
}

TfLiteStatus CheckLike(const char* what, const TfLiteTensor* t, int32_t size,
                       bool must_be_variable) {
  TL_TFLM_ENSURE(t != nullptr && t->type == kTfLiteFloat32 &&
                     ElementCount(t->dims) == size,
                 "%s: %s must be float32 with %d elements", kOp, what,
                 static_cast<int>(size));
  TL_TFLM_ENSURE(!must_be_variable || t->is_variable,
                 "%s: without outputs %s is updated in place and must be a "
                 "variable tensor", kOp, what);
  return kTfLiteOk;
}

TfLiteStatus Validate(OpData* data, TfLiteTensor* const* in,
                      TfLiteTensor* const* out) {
  TL_TFLM_ENSURE(data->options_ok,
                 "%s: options must be learning_rate and momentum", kOp);
  TL_TFLM_ENSURE(data->momentum == 0.0f || data->has_velocity,
                 "%s: momentum %f needs the velocity input", kOp,
                 static_cast<double>(data->momentum));
  TL_TFLM_ENSURE(in[0] != nullptr && in[0]->type == kTfLiteFloat32,
                 "%s: weights must be float32", kOp);
  const int64_t size = ElementCount(in[0]->dims);
  TL_TFLM_ENSURE(size <= INT32_MAX, "%s: weights too large", kOp);
  data->size = static_cast<int32_t>(size);
  TF_LITE_ENSURE_STATUS(CheckLike("weights", in[0], data->size, data->in_place));
  TF_LITE_ENSURE_STATUS(CheckLike("grad", in[1], data->size, false));
  if (data->has_velocity) {
    TF_LITE_ENSURE_STATUS(
        CheckLike("velocity", in[2], data->size, data->in_place));
  }
  if (!data->in_place) {
    TF_LITE_ENSURE_STATUS(CheckLike("new_weights", out[0], data->size, false));
    if (data->has_velocity) {
      TF_LITE_ENSURE_STATUS(
          CheckLike("new_velocity", out[1], data->size, false));
    }
  }
  return kTfLiteOk;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  const int num_in = node->inputs->size;
  const int num_out = node->outputs->size;
  TL_TFLM_ENSURE(num_in == 2 || num_in == 3,
                 "%s: expects weights, grad[, velocity], got %d inputs", kOp,
                 num_in);
  TL_TFLM_ENSURE(num_out == 0 || num_out == num_in - 1,
                 "%s: expects 0 outputs (in place) or %d, got %d", kOp,
                 num_in - 1, num_out);
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", kOp);
  data->has_velocity = num_in == 3;
  data->in_place = num_out == 0;
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* in[3] = {nullptr, nullptr, nullptr};
  TfLiteTensor* out[2] = {nullptr, nullptr};
  for (int i = 0; i < num_in; ++i) in[i] = mc->AllocateTempInputTensor(node, i);
  for (int i = 0; i < num_out; ++i) out[i] = mc->AllocateTempOutputTensor(node, i);
  const TfLiteStatus status = Validate(data, in, out);
  for (TfLiteTensor* t : in) {
    if (t != nullptr) mc->DeallocateTempTfLiteTensor(t);
  }
  for (TfLiteTensor* t : out) {
    if (t != nullptr) mc->DeallocateTempTfLiteTensor(t);
  }
  return status;
}

// Returns the buffer the update writes: the variable input itself, or the
// output after copying the input into it.
float* Target(TfLiteContext* context, TfLiteNode* node, const OpData* data,
              int input_index, int output_index) {
  if (data->in_place) {
    return tflite::micro::GetTensorData<float>(
        tflite::micro::GetMutableEvalInput(context, node, input_index));
  }
  const float* source = tflite::micro::GetTensorData<float>(
      tflite::micro::GetEvalInput(context, node, input_index));
  float* target = tflite::micro::GetTensorData<float>(
      tflite::micro::GetEvalOutput(context, node, output_index));
  for (int32_t i = 0; i < data->size; ++i) target[i] = source[i];
  return target;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const float* grad = tflite::micro::GetTensorData<float>(
      tflite::micro::GetEvalInput(context, node, kGradTensor));
  float* weights = Target(context, node, data, kWeightsTensor, 0);
  if (data->has_velocity) {
    float* velocity = Target(context, node, data, kVelocityTensor, 1);
    reference::SgdMomentumUpdate(grad, data->size, data->learning_rate,
                                 data->momentum, velocity, weights);
  } else {
    reference::SgdUpdate(grad, data->size, data->learning_rate, weights);
  }
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_TL_SGD_UPDATE() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Eval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
