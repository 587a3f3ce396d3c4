// TL_DEPTHWISE_INPUT_GRAD: TFLite Micro adapter of reference/depthwise_input_grad.h.
//
// in:  grad_output f32 [N, Ho, Wo, C*M],
//      filter [1, kh, kw, C*M]: int8 with per-channel affine quantization
//      (the frozen weights, zero point 0) or float32 (trainable weights),
//      [mask] uint8 [ceil(size / 8)] (optional, index 2, -1 or omitted when
//      absent): the packed 1-bit mask of the layer's output activation,
//      applied to grad_output as it is read
// out: grad_input f32 [N, H, W, C] (the input size is read from this shape:
//      with stride 2 it is not implied by the output size)
// options: "padding" (0 VALID, 1 SAME), "stride_h", "stride_w"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/depthwise_input_grad.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr const char* kOp = "TL_DEPTHWISE_INPUT_GRAD";
constexpr int kGradOutputTensor = 0;
constexpr int kFilterTensor = 1;
constexpr int kMaskTensor = 2;
constexpr int kGradInputTensor = 0;

struct OpData {
  ConvOptions options;
  bool options_ok;
  reference::ConvGeometry geometry;
  float* scales;  // per output channel, int8 filters only
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data != nullptr) {
    data->options_ok = ParseConvOptions(buffer, length, &data->options);
    data->scales = nullptr;
  }
  return data;
}

TfLiteStatus Validate(TfLiteContext* context, OpData* data,
                      const TfLiteTensor* grad_output,
                      const TfLiteTensor* filter,
                      const TfLiteTensor* grad_input,
                      const TfLiteTensor* mask) {
  TL_TFLM_ENSURE(data->options_ok, "%s: options must be padding (0/1), "
                 "stride_h, stride_w (positive)", kOp);
  TL_TFLM_ENSURE(grad_output != nullptr && grad_output->type == kTfLiteFloat32,
                 "%s: grad_output must be float32", kOp);
  TL_TFLM_ENSURE(filter != nullptr && HasRank(filter, 4) &&
                     (filter->type == kTfLiteInt8 ||
                      filter->type == kTfLiteFloat32),
                 "%s: filter must be int8 or float32 [1, kh, kw, C*M], got %s of rank %d", kOp,
                 filter == nullptr ? "none" : TfLiteTypeGetName(filter->type),
                 filter == nullptr || filter->dims == nullptr ? 0 : filter->dims->size);
  TL_TFLM_ENSURE(grad_input != nullptr && grad_input->type == kTfLiteFloat32 &&
                     HasRank(grad_input, 4),
                 "%s: grad_input must be float32 NHWC", kOp);
  TF_LITE_ENSURE_OK(context,
                    CheckMask(kOp, mask, ElementCount(grad_output->dims)));
  const int* f = filter->dims->data;
  const int* gi = grad_input->dims->data;
  TL_TFLM_ENSURE(f[0] == 1 && gi[3] > 0 && f[3] % gi[3] == 0,
                 "%s: filter channels (%d) must be a multiple of grad_input "
                 "channels (%d)", kOp, f[3], gi[3]);
  TF_LITE_ENSURE_OK(context,
                    PrepareConvGeometry(kOp, data->options, gi[0], gi[1], gi[2],
                                        gi[3], f[3], f[1], f[2], grad_output,
                                        &data->geometry));
  if (filter->type == kTfLiteInt8) {
    return CopyFilterScales(context, kOp, filter, 3, f[3], &data->scales);
  }
  return kTfLiteOk;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  TL_TFLM_ENSURE((node->inputs->size == 2 || node->inputs->size == 3) &&
                     node->outputs->size == 1,
                 "%s: expects 2 or 3 inputs (grad_output, filter[, mask]) "
                 "and 1 output, got %d and %d", kOp,
                 node->inputs->size, node->outputs->size);
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", kOp);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* grad_output = mc->AllocateTempInputTensor(node, kGradOutputTensor);
  TfLiteTensor* filter = mc->AllocateTempInputTensor(node, kFilterTensor);
  TfLiteTensor* grad_input = mc->AllocateTempOutputTensor(node, kGradInputTensor);
  TfLiteTensor* mask = mc->AllocateTempInputTensor(node, kMaskTensor);
  const TfLiteStatus status =
      Validate(context, data, grad_output, filter, grad_input, mask);
  if (grad_output != nullptr) mc->DeallocateTempTfLiteTensor(grad_output);
  if (filter != nullptr) mc->DeallocateTempTfLiteTensor(filter);
  if (grad_input != nullptr) mc->DeallocateTempTfLiteTensor(grad_input);
  if (mask != nullptr) mc->DeallocateTempTfLiteTensor(mask);
  return status;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const float* grad_output = tflite::micro::GetTensorData<float>(
      tflite::micro::GetEvalInput(context, node, kGradOutputTensor));
  const TfLiteEvalTensor* filter =
      tflite::micro::GetEvalInput(context, node, kFilterTensor);
  float* grad_input = tflite::micro::GetTensorData<float>(
      tflite::micro::GetEvalOutput(context, node, kGradInputTensor));
  const uint8_t* mask = tflite::micro::GetOptionalTensorData<uint8_t>(
      tflite::micro::GetEvalInput(context, node, kMaskTensor));
  switch (filter->type) {
    case kTfLiteInt8:
      reference::DepthwiseInputGrad<int8_t>(
          data->geometry, grad_output,
          tflite::micro::GetTensorData<int8_t>(filter), data->scales,
          grad_input, mask);
      return kTfLiteOk;
    case kTfLiteFloat32:
      reference::DepthwiseInputGrad<float>(
          data->geometry, grad_output,
          tflite::micro::GetTensorData<float>(filter), nullptr, grad_input,
          mask);
      return kTfLiteOk;
    default:
      MicroPrintf("%s: filter type %s not supported (int8, float32)", kOp,
                  TfLiteTypeGetName(filter->type));
      return kTfLiteError;
  }
}

}  // namespace

TFLMRegistration* Register_TL_DEPTHWISE_INPUT_GRAD() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Eval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
