// TL_CONV_WGRAD_SPARSE: TFLite Micro adapter of reference/conv_weight_grad.h.
//
// in:  input f32 or int8 [N, H, W, Cin] (int8: the activation saved by a
//      quantized forward pass, dequantized with its own scale/zero point),
//      grad_output f32 [N, Ho, Wo, Cout],
//      channels int32 [K] (output channels to train, usually a constant)
// out: grad_filter f32 [K, kh, kw, Cin / groups] (OHWI rows of the chosen
//      channels; filter size and group count are read from this shape)
// options: "padding" (0 VALID, 1 SAME), "stride_h", "stride_w"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/conv_weight_grad.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr const char* kOp = "TL_CONV_WGRAD_SPARSE";
constexpr int kInputTensor = 0;
constexpr int kGradOutputTensor = 1;
constexpr int kChannelsTensor = 2;
constexpr int kGradFilterTensor = 0;

struct OpData {
  ConvOptions options;
  bool options_ok;
  reference::ConvGeometry geometry;
  reference::ActivationQuantization quant;
  int32_t num_channels;
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
                      const TfLiteTensor* channels,
                      const TfLiteTensor* grad_filter) {
  TL_TFLM_ENSURE(data->options_ok, "%s: options must be padding (0/1), "
                 "stride_h, stride_w (positive)", kOp);
  TL_TFLM_ENSURE(input != nullptr &&
                     (input->type == kTfLiteFloat32 || input->type == kTfLiteInt8) &&
                     HasRank(input, 4),
                 "%s: input must be float32 or int8 NHWC", kOp);
  TF_LITE_ENSURE_OK(context, ReadInputQuantization(kOp, input, &data->quant));
  TL_TFLM_ENSURE(grad_output != nullptr && grad_output->type == kTfLiteFloat32,
                 "%s: grad_output must be float32", kOp);
  TL_TFLM_ENSURE(channels != nullptr && channels->type == kTfLiteInt32 &&
                     HasRank(channels, 1),
                 "%s: channels must be a 1-D int32 tensor", kOp);
  TL_TFLM_ENSURE(grad_filter != nullptr && grad_filter->type == kTfLiteFloat32 &&
                     HasRank(grad_filter, 4),
                 "%s: grad_filter must be float32 [K, kh, kw, Cin]", kOp);
  const int* in = input->dims->data;
  const int* gf = grad_filter->dims->data;
  data->num_channels = channels->dims->data[0];
  // A grouped convolution's filter has in_c / groups input channels, as in
  // TFLite's grouped CONV_2D: the group count follows from the shapes.
  TL_TFLM_ENSURE(gf[0] == data->num_channels && gf[3] > 0 && in[3] % gf[3] == 0,
                 "%s: grad_filter must be [%d, kh, kw, %d / groups]", kOp,
                 static_cast<int>(data->num_channels), in[3]);
  TL_TFLM_ENSURE(HasRank(grad_output, 4), "%s: grad_output must be 4-D", kOp);
  TF_LITE_ENSURE_OK(context, PrepareConvGeometry(
                                 kOp, data->options, in[0], in[1], in[2], in[3],
                                 grad_output->dims->data[3], gf[1], gf[2],
                                 grad_output, &data->geometry, in[3] / gf[3]));
  // A constant channel list is checked once here; Eval re-checks otherwise.
  if (channels->allocation_type == kTfLiteMmapRo && channels->data.i32 != nullptr) {
    TL_TFLM_ENSURE(reference::ChannelsInRange(channels->data.i32,
                                              data->num_channels,
                                              data->geometry.out_c),
                   "%s: channel indices must lie in [0, %d)", kOp,
                   static_cast<int>(data->geometry.out_c));
  }
  return kTfLiteOk;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  TL_TFLM_ENSURE(node->inputs->size == 3 && node->outputs->size == 1,
                 "%s: expects 3 inputs and 1 output, got %d and %d", kOp,
                 node->inputs->size, node->outputs->size);
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", kOp);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* input = mc->AllocateTempInputTensor(node, kInputTensor);
  TfLiteTensor* grad_output = mc->AllocateTempInputTensor(node, kGradOutputTensor);
  TfLiteTensor* channels = mc->AllocateTempInputTensor(node, kChannelsTensor);
  TfLiteTensor* grad_filter = mc->AllocateTempOutputTensor(node, kGradFilterTensor);
  const TfLiteStatus status =
      Validate(context, data, input, grad_output, channels, grad_filter);
  if (input != nullptr) mc->DeallocateTempTfLiteTensor(input);
  if (grad_output != nullptr) mc->DeallocateTempTfLiteTensor(grad_output);
  if (channels != nullptr) mc->DeallocateTempTfLiteTensor(channels);
  if (grad_filter != nullptr) mc->DeallocateTempTfLiteTensor(grad_filter);
  return status;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const TfLiteEvalTensor* input =
      tflite::micro::GetEvalInput(context, node, kInputTensor);
  const float* grad_output = tflite::micro::GetTensorData<float>(
      tflite::micro::GetEvalInput(context, node, kGradOutputTensor));
  const int32_t* channels = tflite::micro::GetTensorData<int32_t>(
      tflite::micro::GetEvalInput(context, node, kChannelsTensor));
  float* grad_filter = tflite::micro::GetTensorData<float>(
      tflite::micro::GetEvalOutput(context, node, kGradFilterTensor));
  bool ok = false;
  switch (input->type) {
    case kTfLiteFloat32:
      ok = reference::ConvWeightGradSparse<float>(
          data->geometry, tflite::micro::GetTensorData<float>(input),
          data->quant, grad_output, channels, data->num_channels, grad_filter);
      break;
    case kTfLiteInt8:
      ok = reference::ConvWeightGradSparse<int8_t>(
          data->geometry, tflite::micro::GetTensorData<int8_t>(input),
          data->quant, grad_output, channels, data->num_channels, grad_filter);
      break;
    default:
      MicroPrintf("%s: input type %s not supported (float32, int8)", kOp,
                  TfLiteTypeGetName(input->type));
      return kTfLiteError;
  }
  TL_TFLM_ENSURE(ok, "%s: channel indices must lie in [0, %d)", kOp,
                 static_cast<int>(data->geometry.out_c));
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_TL_CONV_WGRAD_SPARSE() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Eval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
