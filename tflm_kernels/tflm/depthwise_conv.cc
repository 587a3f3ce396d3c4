// TL_DEPTHWISE_CONV: TFLite Micro adapter of reference/depthwise_conv.h, the
// float forward depthwise convolution of a training graph.
//
// in:  input f32 [N, H, W, C],
//      filter f32 [1, kh, kw, C*M] (constant or variable),
//      [bias] f32 [C*M] (optional, index 2, -1 or omitted when absent)
// out: output f32 [N, Ho, Wo, C*M] (the input size is read from input, the
//      output size must be the convolution's),
//      [mask] uint8 [ceil(size / 8)] (optional): the 1-bit mask of the fused
//      activation's linear range on output, as TL_RELU_MASK writes it
// options: "activation" (0 none, 1 ReLU, 2 ReLU6), "padding" (0 VALID,
//          1 SAME), "stride_h", "stride_w"
// int8 (an int8 training graph's forward, reference::DepthwiseConvInt8):
// input int8 (per-tensor quantization), filter int8 with per-channel scales
// along axis 3 (zero points 0), [bias] int32, or f32 (quantized per invoke,
// as TL_CONV's), output int8. Value for value TFLM's int8
// DEPTHWISE_CONV_2D; the mask is TL_RELU_MASK's on the int8 output.
// Keeps only its OpData (no per-channel buffers: an int8 op computes its
// requantization multipliers per invoke into 8 bytes per channel of scratch
// in the head, where TFLM's DEPTHWISE_CONV_2D keeps them in the persistent
// tail).
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/depthwise_conv.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr const char* kOp = "TL_DEPTHWISE_CONV";
constexpr int kInputTensor = 0;
constexpr int kFilterTensor = 1;
constexpr int kBiasTensor = 2;
constexpr int kOutputTensor = 0;
constexpr int kMaskTensor = 1;
constexpr size_t kActivationIndex = 0;  // "activation"
constexpr size_t kPaddingIndex = 1;     // "padding"
constexpr size_t kStrideHIndex = 2;     // "stride_h"
constexpr size_t kStrideWIndex = 3;     // "stride_w"
constexpr size_t kNumOptions = 4;

struct OpData {
  ConvOptions options;
  reference::Activation activation;
  bool options_ok;
  reference::ConvGeometry geometry;
  bool int8;
  Int8ConvQuantization quant;  // int8 only
  int scratch_index;           // int8: multipliers and shifts
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data == nullptr) return nullptr;
  data->options_ok = OptionCount(buffer, length) == kNumOptions;
  if (!data->options_ok) return data;
  const int32_t activation = OptionAsInt32(buffer, length, kActivationIndex);
  const int32_t padding = OptionAsInt32(buffer, length, kPaddingIndex);
  data->activation = static_cast<reference::Activation>(activation);
  data->options.padding =
      padding == 1 ? reference::Padding::kSame : reference::Padding::kValid;
  data->options.stride_h = OptionAsInt32(buffer, length, kStrideHIndex);
  data->options.stride_w = OptionAsInt32(buffer, length, kStrideWIndex);
  data->options_ok = activation >= 0 && activation <= 2 &&
                     (padding == 0 || padding == 1) &&
                     data->options.stride_h > 0 && data->options.stride_w > 0;
  return data;
}

TfLiteStatus Validate(TfLiteContext* context, OpData* data,
                      const TfLiteTensor* input, const TfLiteTensor* filter,
                      const TfLiteTensor* bias, const TfLiteTensor* output,
                      const TfLiteTensor* mask) {
  TL_TFLM_ENSURE(data->options_ok, "%s: options must be activation (0 none, "
                 "1 relu, 2 relu6), padding (0/1), stride_h, stride_w "
                 "(positive)", kOp);
  TL_TFLM_ENSURE(input != nullptr &&
                     (input->type == kTfLiteFloat32 ||
                      input->type == kTfLiteInt8) &&
                     HasRank(input, 4),
                 "%s: input must be float32 or int8 NHWC", kOp);
  data->int8 = input->type == kTfLiteInt8;
  const TfLiteType type = input->type;
  TL_TFLM_ENSURE(filter != nullptr && filter->type == type &&
                     HasRank(filter, 4),
                 "%s: filter must be %s [1, kh, kw, C*M], as the input", kOp,
                 TypeName(type));
  const int* x = input->dims->data;
  const int* f = filter->dims->data;
  TL_TFLM_ENSURE(f[0] == 1 && x[3] > 0 && f[3] % x[3] == 0,
                 "%s: filter is [%d, %d, %d, %d]; expected [1, kh, kw, a "
                 "multiple of the input's %d channels]", kOp, f[0], f[1], f[2],
                 f[3], x[3]);
  TF_LITE_ENSURE_OK(context,
                    CheckConvOutput(kOp, data->options, input, f[1], f[2],
                                    f[3], output, bias, type));
  TF_LITE_ENSURE_OK(context,
                    PrepareConvGeometry(kOp, data->options, x[0], x[1], x[2],
                                        x[3], f[3], f[1], f[2], output,
                                        &data->geometry));
  if (mask != nullptr) {
    TL_TFLM_ENSURE(data->activation != reference::Activation::kNone,
                   "%s: a mask output needs a ReLU or ReLU6 activation", kOp);
    TF_LITE_ENSURE_OK(context,
                      CheckMask(kOp, mask, ElementCount(output->dims)));
  }
  if (!data->int8) return kTfLiteOk;
  TF_LITE_ENSURE_OK(context, ReadInt8ConvQuantization(
                                 context, kOp, input, filter, 3, f[3], output,
                                 static_cast<int32_t>(data->activation),
                                 &data->quant));
  const size_t scratch_ints =
      static_cast<size_t>(Int8ConvScratchInts(bias, f[3]));
  TL_TFLM_ENSURE(context->RequestScratchBufferInArena(
                     context, sizeof(int32_t) * scratch_ints,
                     &data->scratch_index) == kTfLiteOk,
                 "%s: arena too small for the requantization scratch", kOp);
  return kTfLiteOk;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  TL_TFLM_ENSURE((node->inputs->size == 2 || node->inputs->size == 3) &&
                     (node->outputs->size == 1 || node->outputs->size == 2),
                 "%s: expects 2 or 3 inputs (input, filter[, bias]) and 1 or "
                 "2 outputs (output[, mask]), got %d and %d", kOp,
                 node->inputs->size, node->outputs->size);
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", kOp);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* input = mc->AllocateTempInputTensor(node, kInputTensor);
  TfLiteTensor* filter = mc->AllocateTempInputTensor(node, kFilterTensor);
  TfLiteTensor* bias = node->inputs->size == 3
                           ? mc->AllocateTempInputTensor(node, kBiasTensor)
                           : nullptr;
  TfLiteTensor* output = mc->AllocateTempOutputTensor(node, kOutputTensor);
  TfLiteTensor* mask = node->outputs->size == 2
                           ? mc->AllocateTempOutputTensor(node, kMaskTensor)
                           : nullptr;
  const TfLiteStatus status =
      Validate(context, data, input, filter, bias, output, mask);
  for (TfLiteTensor* t : {input, filter, bias, output, mask}) {
    if (t != nullptr) mc->DeallocateTempTfLiteTensor(t);
  }
  return status;
}

TfLiteStatus EvalInt8(TfLiteContext* context, TfLiteNode* node,
                      const OpData* data) {
  const reference::ConvGeometry& g = data->geometry;
  const Int8ConvQuantization& q = data->quant;
  const reference::Int8Stage stage =
      Int8ConvStage(context, node, q, data->scratch_index, g.out_c);
  uint8_t* mask =
      node->outputs->size == 2
          ? tflite::micro::GetTensorData<uint8_t>(
                tflite::micro::GetEvalOutput(context, node, kMaskTensor))
          : nullptr;
  reference::DepthwiseConvInt8(
      g,
      tflite::micro::GetTensorData<int8_t>(
          tflite::micro::GetEvalInput(context, node, kInputTensor)),
      stage,
      tflite::micro::GetTensorData<int8_t>(
          tflite::micro::GetEvalOutput(context, node, kOutputTensor)),
      mask, q.mask_lower, q.mask_upper);
  return kTfLiteOk;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  if (data->int8) return EvalInt8(context, node, data);
  const float* bias =
      node->inputs->size == 3
          ? tflite::micro::GetOptionalTensorData<float>(
                tflite::micro::GetEvalInput(context, node, kBiasTensor))
          : nullptr;
  uint8_t* mask =
      node->outputs->size == 2
          ? tflite::micro::GetTensorData<uint8_t>(
                tflite::micro::GetEvalOutput(context, node, kMaskTensor))
          : nullptr;
  reference::DepthwiseConv(
      data->geometry,
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalInput(context, node, kInputTensor)),
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalInput(context, node, kFilterTensor)),
      bias, data->activation,
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalOutput(context, node, kOutputTensor)),
      mask);
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_TL_DEPTHWISE_CONV() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Eval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
