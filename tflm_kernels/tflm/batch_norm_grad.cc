// TL_BATCHNORM_GRAD: TFLite Micro adapter of reference/batch_norm_grad.h, the
// backward of a batch norm run as the affine map of its frozen statistics
// (the forward is builtin MUL/ADD).
//
// in:  0 grad_output f32 [..., C]
//      1 [mask] uint8: 1-bit mask of the layer's output activation
//      2 [x] f32 or int8, grad_output's shape: the saved input (needed when
//        gamma is trained)
//      3 [mean] f32 [C] (needed when gamma is trained)
//      4 [inv_std] f32 [C] = 1 / sqrt(var + eps) (needed for grad_input or a
//        trained gamma)
//      5 [gamma] f32 [C]: variable (trained in place), constant, or absent (1)
//      6 [beta] f32 [C]: variable, trained in place
// out: [grad_input] f32, grad_output's shape = dy * gamma * inv_std (gamma
//      before its update); 0 outputs or -1 when not needed
// options: "learning_rate"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/batch_norm_grad.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr const char* kOp = "TL_BATCHNORM_GRAD";
constexpr int kGradOutputTensor = 0;
constexpr int kMaskTensor = 1;
constexpr int kXTensor = 2;
constexpr int kMeanTensor = 3;
constexpr int kInvStdTensor = 4;
constexpr int kGammaTensor = 5;
constexpr int kBetaTensor = 6;
constexpr int kNumInputs = 7;
constexpr size_t kLearningRateIndex = 0;  // "learning_rate"

struct OpData {
  bool options_ok;
  float learning_rate;
  int32_t rows, channels;
  reference::ActivationQuantization quant;
  bool grad_input, train_gamma, train_beta;
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data == nullptr) return nullptr;
  data->options_ok = OptionCount(buffer, length) == 1;
  if (data->options_ok) {
    data->learning_rate = OptionAsFloat(buffer, length, kLearningRateIndex);
  }
  return data;
}

TfLiteStatus CheckChannelVector(const char* what, const TfLiteTensor* t,
                                int32_t channels) {
  TL_TFLM_ENSURE(t == nullptr || (t->type == kTfLiteFloat32 && HasRank(t, 1) &&
                                  t->dims->data[0] == channels),
                 "%s: %s must be float32 [%d]", kOp, what,
                 static_cast<int>(channels));
  return kTfLiteOk;
}

bool SameDims(const TfLiteTensor* a, const TfLiteTensor* b) {
  if (a->dims->size != b->dims->size) return false;
  for (int i = 0; i < a->dims->size; ++i) {
    if (a->dims->data[i] != b->dims->data[i]) return false;
  }
  return true;
}

TfLiteStatus Validate(OpData* data, TfLiteTensor* const* in,
                      const TfLiteTensor* grad_input) {
  TL_TFLM_ENSURE(data->options_ok, "%s: needs one option, learning_rate", kOp);
  const TfLiteTensor* grad_output = in[kGradOutputTensor];
  TL_TFLM_ENSURE(grad_output != nullptr && grad_output->type == kTfLiteFloat32 &&
                     grad_output->dims->size >= 1 &&
                     grad_output->dims->data[grad_output->dims->size - 1] > 0,
                 "%s: grad_output must be float32 [..., C]", kOp);
  const int64_t elements = ElementCount(grad_output->dims);
  TL_TFLM_ENSURE(elements <= INT32_MAX, "%s: grad_output too large", kOp);
  data->channels = grad_output->dims->data[grad_output->dims->size - 1];
  data->rows = static_cast<int32_t>(elements / data->channels);
  TF_LITE_ENSURE_STATUS(CheckMask(kOp, in[kMaskTensor], elements));
  TF_LITE_ENSURE_STATUS(CheckChannelVector("mean", in[kMeanTensor], data->channels));
  TF_LITE_ENSURE_STATUS(
      CheckChannelVector("inv_std", in[kInvStdTensor], data->channels));
  TF_LITE_ENSURE_STATUS(CheckChannelVector("gamma", in[kGammaTensor], data->channels));
  TF_LITE_ENSURE_STATUS(CheckChannelVector("beta", in[kBetaTensor], data->channels));
  data->train_gamma = in[kGammaTensor] != nullptr && in[kGammaTensor]->is_variable;
  data->train_beta = in[kBetaTensor] != nullptr;
  TL_TFLM_ENSURE(!data->train_beta || in[kBetaTensor]->is_variable,
                 "%s: beta is only an input to be trained: it must be a "
                 "variable tensor", kOp);
  data->grad_input = grad_input != nullptr;
  if (data->grad_input) {
    TL_TFLM_ENSURE(grad_input->type == kTfLiteFloat32 &&
                       SameDims(grad_input, grad_output),
                   "%s: grad_input must be float32 with grad_output's shape",
                   kOp);
  }
  TL_TFLM_ENSURE(data->grad_input || data->train_gamma || data->train_beta,
                 "%s: nothing to compute: no grad_input output and neither "
                 "gamma nor beta is a variable tensor", kOp);
  TL_TFLM_ENSURE(!(data->grad_input || data->train_gamma) ||
                     in[kInvStdTensor] != nullptr,
                 "%s: grad_input and a trained gamma need inv_std (input 4)",
                 kOp);
  data->quant = reference::kNoQuantization;
  if (data->train_gamma) {
    const TfLiteTensor* x = in[kXTensor];
    TL_TFLM_ENSURE(x != nullptr && in[kMeanTensor] != nullptr,
                   "%s: a trained gamma needs the saved input x (input 2) and "
                   "the mean (input 3)", kOp);
    TL_TFLM_ENSURE((x->type == kTfLiteFloat32 || x->type == kTfLiteInt8) &&
                       SameDims(x, grad_output),
                   "%s: x must be float32 or int8 with grad_output's shape", kOp);
    TF_LITE_ENSURE_STATUS(ReadInputQuantization(kOp, x, &data->quant));
  }
  return kTfLiteOk;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  TL_TFLM_ENSURE(node->inputs->size == kNumInputs && node->outputs->size <= 1,
                 "%s: expects %d inputs (grad_output, mask, x, mean, inv_std, "
                 "gamma, beta; absent ones -1) and 0 or 1 output, got %d and %d",
                 kOp, kNumInputs, node->inputs->size, node->outputs->size);
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", kOp);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* in[kNumInputs];
  for (int i = 0; i < kNumInputs; ++i) in[i] = mc->AllocateTempInputTensor(node, i);
  TfLiteTensor* grad_input =
      node->outputs->size == 1 ? mc->AllocateTempOutputTensor(node, 0) : nullptr;
  const TfLiteStatus status = Validate(data, in, grad_input);
  for (TfLiteTensor* t : in) {
    if (t != nullptr) mc->DeallocateTempTfLiteTensor(t);
  }
  if (grad_input != nullptr) mc->DeallocateTempTfLiteTensor(grad_input);
  return status;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
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
  out.beta = data->train_beta ? GetOptionalTensorData<float>(GetMutableEvalInput(
                                    context, node, kBetaTensor))
                              : nullptr;
  out.learning_rate = data->learning_rate;
  const float* grad_output = tflite::micro::GetTensorData<float>(
      GetEvalInput(context, node, kGradOutputTensor));
  const uint8_t* mask =
      GetOptionalTensorData<uint8_t>(GetEvalInput(context, node, kMaskTensor));
  const float* mean =
      GetOptionalTensorData<float>(GetEvalInput(context, node, kMeanTensor));
  const float* inv_std =
      GetOptionalTensorData<float>(GetEvalInput(context, node, kInvStdTensor));
  const TfLiteEvalTensor* x = GetEvalInput(context, node, kXTensor);
  // x is only read for a trained gamma (Prepare checked its type then).
  if (x == nullptr || !data->train_gamma || x->type == kTfLiteFloat32) {
    reference::BatchNormGrad<float>(
        grad_output, mask,
        data->train_gamma ? GetOptionalTensorData<float>(x) : nullptr,
        data->quant, mean, inv_std, gamma, data->rows, data->channels, out);
    return kTfLiteOk;
  }
  switch (x->type) {
    case kTfLiteInt8:
      reference::BatchNormGrad<int8_t>(
          grad_output, mask, tflite::micro::GetTensorData<int8_t>(x),
          data->quant, mean, inv_std, gamma, data->rows, data->channels, out);
      return kTfLiteOk;
    default:
      MicroPrintf("%s: x type %s not supported (float32, int8)", kOp,
                  TfLiteTypeGetName(x->type));
      return kTfLiteError;
  }
}

}  // namespace

TFLMRegistration* Register_TL_BATCHNORM_GRAD() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Eval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
