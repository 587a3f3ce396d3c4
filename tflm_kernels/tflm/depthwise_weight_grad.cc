// TL_DEPTHWISE_WGRAD: TFLite Micro adapter of reference/depthwise_weight_grad.h.
//
// in:  input f32 or int8 [N, H, W, C] (int8: a saved quantized activation),
//      grad_output f32 [N, Ho, Wo, C*M]
// out: grad_filter f32 [1, kh, kw, C*M] (filter size read from this shape)
// options: "padding" (0 VALID, 1 SAME), "stride_h", "stride_w"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/depthwise_weight_grad.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr const char* kOp = "TL_DEPTHWISE_WGRAD";
constexpr int kInputTensor = 0;
constexpr int kGradOutputTensor = 1;
constexpr int kGradFilterTensor = 0;

struct OpData {
  ConvOptions options;
  bool options_ok;
  reference::ConvGeometry geometry;
  reference::ActivationQuantization quant;
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data != nullptr) {
    data->options_ok = ParseConvOptions(buffer, length, &data->options);
  }
  return data;
}

TfLiteStatus Validate(TfLiteContext* context, OpData* data,
                      const TfLiteTensor* input,
                      const TfLiteTensor* grad_output,
                      const TfLiteTensor* grad_filter) {
  TL_TFLM_ENSURE(data->options_ok, "%s: options must be padding (0/1), "
                 "stride_h, stride_w (positive)", kOp);
  TL_TFLM_ENSURE(input != nullptr &&
                     (input->type == kTfLiteFloat32 || input->type == kTfLiteInt8) &&
                     HasRank(input, 4),
                 "%s: input must be float32 or int8 NHWC", kOp);
  TF_LITE_ENSURE_OK(context, ReadInputQuantization(kOp, input, &data->quant));
  TL_TFLM_ENSURE(grad_output != nullptr && grad_output->type == kTfLiteFloat32 &&
                     HasRank(grad_output, 4),
                 "%s: grad_output must be float32 NHWC", kOp);
  TL_TFLM_ENSURE(grad_filter != nullptr && grad_filter->type == kTfLiteFloat32 &&
                     HasRank(grad_filter, 4) && grad_filter->dims->data[0] == 1,
                 "%s: grad_filter must be float32 [1, kh, kw, C*M]", kOp);
  const int* in = input->dims->data;
  const int out_c = grad_output->dims->data[3];
  TL_TFLM_ENSURE(in[3] > 0 && out_c % in[3] == 0 &&
                     grad_filter->dims->data[3] == out_c,
                 "%s: grad_output/grad_filter channels (%d) must be a "
                 "multiple of the input channels (%d)", kOp, out_c, in[3]);
  return PrepareConvGeometry(kOp, data->options, in[0], in[1], in[2], in[3],
                             out_c, grad_filter->dims->data[1],
                             grad_filter->dims->data[2], grad_output,
                             &data->geometry);
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  TL_TFLM_ENSURE(node->inputs->size == 2 && node->outputs->size == 1,
                 "%s: expects 2 inputs and 1 output, got %d and %d", kOp,
                 node->inputs->size, node->outputs->size);
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", kOp);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* input = mc->AllocateTempInputTensor(node, kInputTensor);
  TfLiteTensor* grad_output = mc->AllocateTempInputTensor(node, kGradOutputTensor);
  TfLiteTensor* grad_filter = mc->AllocateTempOutputTensor(node, kGradFilterTensor);
  const TfLiteStatus status =
      Validate(context, data, input, grad_output, grad_filter);
  if (input != nullptr) mc->DeallocateTempTfLiteTensor(input);
  if (grad_output != nullptr) mc->DeallocateTempTfLiteTensor(grad_output);
  if (grad_filter != nullptr) mc->DeallocateTempTfLiteTensor(grad_filter);
  return status;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const TfLiteEvalTensor* input =
      tflite::micro::GetEvalInput(context, node, kInputTensor);
  const float* grad_output = tflite::micro::GetTensorData<float>(
      tflite::micro::GetEvalInput(context, node, kGradOutputTensor));
  float* grad_filter = tflite::micro::GetTensorData<float>(
      tflite::micro::GetEvalOutput(context, node, kGradFilterTensor));
  switch (input->type) {
    case kTfLiteFloat32:
      reference::DepthwiseWeightGrad<float>(
          data->geometry, tflite::micro::GetTensorData<float>(input),
          data->quant, grad_output, grad_filter);
      return kTfLiteOk;
    case kTfLiteInt8:
      reference::DepthwiseWeightGrad<int8_t>(
          data->geometry, tflite::micro::GetTensorData<int8_t>(input),
          data->quant, grad_output, grad_filter);
      return kTfLiteOk;
    default:
      MicroPrintf("%s: input type %s not supported (float32, int8)", kOp,
                  TfLiteTypeGetName(input->type));
      return kTfLiteError;
  }
}

}  // namespace

TFLMRegistration* Register_TL_DEPTHWISE_WGRAD() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Eval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
