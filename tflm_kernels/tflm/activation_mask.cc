// TL_RELU_MASK and TL_MASKED_GRAD: TFLite Micro adapters of
// reference/activation_mask.h.
//
// TL_RELU_MASK    in: x f32 or int8 (any shape; int8 uses its quantization)
//                 out: mask uint8 [ceil(size / 8)], LSB first
//                 options: "relu6" (bool): linear range 0 < x < 6, else x > 0
// TL_MASKED_GRAD  in: grad_output f32, mask uint8 [ceil(size / 8)]
//                 out: grad_input f32, same shape as grad_output
#include <math.h>

#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr size_t kRelu6Index = 0;  // "relu6"

struct MaskData {
  bool relu6;
  int32_t size;
  int32_t lower_q;  // int8 input: quantized bounds of the linear range
  int32_t upper_q;
};

void* MaskInit(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<MaskData*>(
      context->AllocatePersistentBuffer(context, sizeof(MaskData)));
  if (data != nullptr) {
    data->relu6 = OptionCount(buffer, length) == 1 &&
                  OptionAsBool(buffer, length, kRelu6Index);
  }
  return data;
}

TfLiteStatus ValidateMask(MaskData* data, const TfLiteTensor* x,
                          const TfLiteTensor* mask) {
  constexpr const char* kOp = "TL_RELU_MASK";
  TL_TFLM_ENSURE(x != nullptr && (x->type == kTfLiteFloat32 || x->type == kTfLiteInt8),
                 "%s: x must be float32 or int8, got %s", kOp,
                 x == nullptr ? "none" : TfLiteTypeGetName(x->type));
  const int64_t size = ElementCount(x->dims);
  TL_TFLM_ENSURE(size <= INT32_MAX, "%s: x too large", kOp);
  data->size = static_cast<int32_t>(size);
  TL_TFLM_ENSURE(mask != nullptr && mask->type == kTfLiteUInt8 && HasRank(mask, 1) &&
                     mask->dims->data[0] == reference::MaskBytes(data->size),
                 "%s: mask must be uint8 [%d]", kOp,
                 static_cast<int>(reference::MaskBytes(data->size)));
  if (x->type == kTfLiteInt8) {
    TL_TFLM_ENSURE(x->params.scale > 0.0f, "%s: int8 x needs a positive scale", kOp);
    reference::Int8MaskBounds(data->relu6, x->params.scale,
                              x->params.zero_point, &data->lower_q,
                              &data->upper_q);
  }
  return kTfLiteOk;
}

TfLiteStatus MaskPrepare(TfLiteContext* context, TfLiteNode* node) {
  TL_TFLM_ENSURE(node->inputs->size == 1 && node->outputs->size == 1,
                 "TL_RELU_MASK: expects 1 input and 1 output, got %d and %d",
                 node->inputs->size, node->outputs->size);
  auto* data = static_cast<MaskData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "TL_RELU_MASK: out of persistent memory");
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* x = mc->AllocateTempInputTensor(node, 0);
  TfLiteTensor* mask = mc->AllocateTempOutputTensor(node, 0);
  const TfLiteStatus status = ValidateMask(data, x, mask);
  if (x != nullptr) mc->DeallocateTempTfLiteTensor(x);
  if (mask != nullptr) mc->DeallocateTempTfLiteTensor(mask);
  return status;
}

TfLiteStatus MaskEval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const MaskData*>(node->user_data);
  const TfLiteEvalTensor* x = tflite::micro::GetEvalInput(context, node, 0);
  uint8_t* mask = tflite::micro::GetTensorData<uint8_t>(
      tflite::micro::GetEvalOutput(context, node, 0));
  switch (x->type) {
    case kTfLiteFloat32:
      reference::PackActivationMask<float, float>(
          tflite::micro::GetTensorData<float>(x), data->size, 0.0f,
          data->relu6 ? 6.0f : INFINITY, mask);
      return kTfLiteOk;
    case kTfLiteInt8:
      reference::PackActivationMask<int8_t, int32_t>(
          tflite::micro::GetTensorData<int8_t>(x), data->size, data->lower_q,
          data->upper_q, mask);
      return kTfLiteOk;
    default:
      MicroPrintf("TL_RELU_MASK: x type %s not supported (float32, int8)",
                  TfLiteTypeGetName(x->type));
      return kTfLiteError;
  }
}

struct MaskedGradData {
  int32_t size;
};

void* MaskedGradInit(TfLiteContext* context, const char*, size_t) {
  return context->AllocatePersistentBuffer(context, sizeof(MaskedGradData));
}

TfLiteStatus ValidateMaskedGrad(MaskedGradData* data,
                                const TfLiteTensor* grad_output,
                                const TfLiteTensor* mask,
                                const TfLiteTensor* grad_input) {
  constexpr const char* kOp = "TL_MASKED_GRAD";
  TL_TFLM_ENSURE(grad_output != nullptr && grad_output->type == kTfLiteFloat32,
                 "%s: grad_output must be float32", kOp);
  const int64_t size = ElementCount(grad_output->dims);
  TL_TFLM_ENSURE(size <= INT32_MAX, "%s: grad_output too large", kOp);
  data->size = static_cast<int32_t>(size);
  TL_TFLM_ENSURE(mask != nullptr && mask->type == kTfLiteUInt8 && HasRank(mask, 1) &&
                     mask->dims->data[0] == reference::MaskBytes(data->size),
                 "%s: mask must be uint8 [%d] for %d gradients", kOp,
                 static_cast<int>(reference::MaskBytes(data->size)),
                 static_cast<int>(data->size));
  TL_TFLM_ENSURE(grad_input != nullptr && grad_input->type == kTfLiteFloat32 &&
                     ElementCount(grad_input->dims) == size,
                 "%s: grad_input must be float32 with %d elements", kOp,
                 static_cast<int>(data->size));
  return kTfLiteOk;
}

TfLiteStatus MaskedGradPrepare(TfLiteContext* context, TfLiteNode* node) {
  TL_TFLM_ENSURE(node->inputs->size == 2 && node->outputs->size == 1,
                 "TL_MASKED_GRAD: expects 2 inputs and 1 output, got %d and %d",
                 node->inputs->size, node->outputs->size);
  auto* data = static_cast<MaskedGradData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "TL_MASKED_GRAD: out of persistent memory");
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* grad_output = mc->AllocateTempInputTensor(node, 0);
  TfLiteTensor* mask = mc->AllocateTempInputTensor(node, 1);
  TfLiteTensor* grad_input = mc->AllocateTempOutputTensor(node, 0);
  const TfLiteStatus status =
      ValidateMaskedGrad(data, grad_output, mask, grad_input);
  if (grad_output != nullptr) mc->DeallocateTempTfLiteTensor(grad_output);
  if (mask != nullptr) mc->DeallocateTempTfLiteTensor(mask);
  if (grad_input != nullptr) mc->DeallocateTempTfLiteTensor(grad_input);
  return status;
}

TfLiteStatus MaskedGradEval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const MaskedGradData*>(node->user_data);
  reference::ApplyActivationMask(
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalInput(context, node, 0)),
      tflite::micro::GetTensorData<uint8_t>(
          tflite::micro::GetEvalInput(context, node, 1)),
      data->size,
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalOutput(context, node, 0)));
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_TL_RELU_MASK() {
  static TFLMRegistration r =
      tflite::micro::RegisterOp(MaskInit, MaskPrepare, MaskEval);
  return &r;
}

TFLMRegistration* Register_TL_MASKED_GRAD() {
  static TFLMRegistration r = tflite::micro::RegisterOp(
      MaskedGradInit, MaskedGradPrepare, MaskedGradEval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
