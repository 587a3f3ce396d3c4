// TL_CONV: TFLite Micro adapter of reference/conv.h, the float forward
// convolution (grouped too) of a training graph, optionally of a
// weight-standardised filter (reference/weight_standardize.h).
//
// in:  input f32 [N, H, W, Ci],
//      filter f32 OHWI [Co, kh, kw, Ci/groups] (constant or variable; with
//      "standardize" the raw filter of a weight-standardised conv),
//      [bias] f32 [Co] (optional, index 2, -1 or omitted when absent)
// out: output f32 [N, Ho, Wo, Co] (the output size must be the
//      convolution's),
//      [mask] uint8 [ceil(size / 8)] (optional): the 1-bit mask of the fused
//      activation's linear range on output, as TL_RELU_MASK writes it,
//      [filter_hat] f32, filter's shape (optional, only with "standardize";
//      the last output): the standardised filter the convolution reads (as
//      TL_WEIGHT_STANDARDIZE writes it). Without it the op keeps only the
//      filter's row statistics (3 floats per output channel of scratch) and
//      computes the standardised values on the fly: the same output, bit
//      for bit, without a filter-sized tensor (TL_WS_CONV_UPDATE standardises
//      the raw filter again in the backward pass).
// options: "activation" (0 none, 1 ReLU, 2 ReLU6), "epsilon" (>= 0, of the
//          standardisation), "padding" (0 VALID, 1 SAME), "standardize"
//          (bool), "stride_h", "stride_w"
// int8 (an int8 training graph's forward, reference::ConvInt8): input int8
// (per-tensor quantization), filter int8 with per-channel scales along axis
// 0 (zero points 0), [bias] int32, or f32 (a trained bias's float master,
// quantized per invoke into 4 more bytes per output channel of scratch,
// with scale s_input * s_filter[c]: no int32 copy lives between steps),
// output int8; no "standardize". Value for value TFLM's int8 CONV_2D; the
// mask is TL_RELU_MASK's on the int8 output.
// Keeps only its OpData (no per-channel buffers: an int8 op computes its
// requantization multipliers per invoke into 8 bytes per output channel of
// scratch in the head, where TFLM's CONV_2D keeps them in the persistent
// tail).
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/conv.h"
#include "tflm_kernels/reference/weight_standardize.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr const char* kOp = "TL_CONV";
constexpr int kInputTensor = 0;
constexpr int kFilterTensor = 1;
constexpr int kBiasTensor = 2;
constexpr int kOutputTensor = 0;
constexpr size_t kActivationIndex = 0;   // "activation"
constexpr size_t kEpsilonIndex = 1;      // "epsilon"
constexpr size_t kPaddingIndex = 2;      // "padding"
constexpr size_t kStandardizeIndex = 3;  // "standardize"
constexpr size_t kStrideHIndex = 4;      // "stride_h"
constexpr size_t kStrideWIndex = 5;      // "stride_w"
constexpr size_t kNumOptions = 6;

struct OpData {
  ConvOptions options;
  reference::Activation activation;
  float epsilon;
  bool standardize;
  bool options_ok;
  int32_t mask_output;  // output index of the mask, or -1
  int32_t hat_output;   // output index of filter_hat, or -1
  reference::ConvGeometry geometry;
  bool int8;
  Int8ConvQuantization quant;  // int8 only
  int scratch_index;  // int8: multipliers and shifts; standardize without
                      // filter_hat: the row statistics
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
  data->epsilon = OptionAsFloat(buffer, length, kEpsilonIndex);
  data->standardize = OptionAsBool(buffer, length, kStandardizeIndex);
  data->options.padding =
      padding == 1 ? reference::Padding::kSame : reference::Padding::kValid;
  data->options.stride_h = OptionAsInt32(buffer, length, kStrideHIndex);
  data->options.stride_w = OptionAsInt32(buffer, length, kStrideWIndex);
  data->options_ok = activation >= 0 && activation <= 2 &&
                     data->epsilon >= 0.0f && (padding == 0 || padding == 1) &&
                     data->options.stride_h > 0 && data->options.stride_w > 0;
  return data;
}

bool SameShape(const TfLiteTensor* a, const TfLiteTensor* b) {
  if (a->dims->size != b->dims->size) return false;
  for (int i = 0; i < a->dims->size; ++i) {
    if (a->dims->data[i] != b->dims->data[i]) return false;
  }
  return true;
}

TfLiteStatus Validate(TfLiteContext* context, OpData* data,
                      const TfLiteTensor* input, const TfLiteTensor* filter,
                      const TfLiteTensor* bias, const TfLiteTensor* output,
                      const TfLiteTensor* mask,
                      const TfLiteTensor* filter_hat) {
  TL_TFLM_ENSURE(data->options_ok, "%s: options must be activation (0 none, "
                 "1 relu, 2 relu6), epsilon (>= 0), padding (0/1), "
                 "standardize, stride_h, stride_w (positive)", kOp);
  TL_TFLM_ENSURE(input != nullptr &&
                     (input->type == kTfLiteFloat32 ||
                      input->type == kTfLiteInt8) &&
                     HasRank(input, 4),
                 "%s: input must be float32 or int8 NHWC", kOp);
  data->int8 = input->type == kTfLiteInt8;
  const TfLiteType type = input->type;
  TL_TFLM_ENSURE(filter != nullptr && filter->type == type &&
                     HasRank(filter, 4),
                 "%s: filter must be %s OHWI [Co, kh, kw, Ci / groups], as "
                 "the input", kOp, TypeName(type));
  TL_TFLM_ENSURE(!data->int8 || !data->standardize,
                 "%s: an int8 convolution has no standardize", kOp);
  const int* x = input->dims->data;
  const int* f = filter->dims->data;
  const int32_t groups = f[3] > 0 ? x[3] / f[3] : 0;
  TL_TFLM_ENSURE(f[0] > 0 && groups > 0 && x[3] % f[3] == 0 &&
                     f[0] % groups == 0,
                 "%s: filter is [%d, %d, %d, %d]; its input channels must "
                 "divide the input's %d into groups that also divide its "
                 "output channels", kOp, f[0], f[1], f[2], f[3], x[3]);
  TF_LITE_ENSURE_OK(context,
                    CheckConvOutput(kOp, data->options, input, f[1], f[2],
                                    f[0], output, bias, type));
  TF_LITE_ENSURE_OK(context,
                    PrepareConvGeometry(kOp, data->options, x[0], x[1], x[2],
                                        x[3], f[0], f[1], f[2], output,
                                        &data->geometry, groups));
  if (mask != nullptr) {
    TL_TFLM_ENSURE(data->activation != reference::Activation::kNone,
                   "%s: a mask output needs a ReLU or ReLU6 activation", kOp);
    TF_LITE_ENSURE_OK(context,
                      CheckMask(kOp, mask, ElementCount(output->dims)));
  }
  if (filter_hat != nullptr) {
    TL_TFLM_ENSURE(filter_hat->type == kTfLiteFloat32 &&
                       SameShape(filter_hat, filter),
                   "%s: with standardize, the last output (filter_hat) must "
                   "be float32 with the filter's shape", kOp);
  }
  if (data->standardize && filter_hat == nullptr) {
    const int32_t floats = reference::kStandardizeStatsPerRow * f[0];
    TL_TFLM_ENSURE(context->RequestScratchBufferInArena(
                       context, sizeof(float) * static_cast<size_t>(floats),
                       &data->scratch_index) == kTfLiteOk,
                   "%s: arena too small for the %d-float standardisation "
                   "statistics", kOp, static_cast<int>(floats));
  }
  if (!data->int8) return kTfLiteOk;
  TF_LITE_ENSURE_OK(context, ReadInt8ConvQuantization(
                                 context, kOp, input, filter, 0, f[0], output,
                                 static_cast<int32_t>(data->activation),
                                 &data->quant));
  const size_t scratch_ints =
      static_cast<size_t>(Int8ConvScratchInts(bias, f[0]));
  TL_TFLM_ENSURE(context->RequestScratchBufferInArena(
                     context, sizeof(int32_t) * scratch_ints,
                     &data->scratch_index) == kTfLiteOk,
                 "%s: arena too small for the requantization scratch", kOp);
  return kTfLiteOk;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", kOp);
  const int outputs = node->outputs->size;
  TL_TFLM_ENSURE((node->inputs->size == 2 || node->inputs->size == 3) &&
                     outputs >= 1 && outputs <= (data->standardize ? 3 : 2),
                 "%s: expects 2 or 3 inputs (input, filter[, bias]) and 1 to "
                 "%d outputs (output[, mask]%s), got %d and %d", kOp,
                 data->standardize ? 3 : 2,
                 data->standardize ? "[, filter_hat]" : "",
                 node->inputs->size, outputs);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  // With standardize, a float32 last output is filter_hat (a mask is uint8).
  data->hat_output = -1;
  if (data->standardize && outputs > 1) {
    TfLiteTensor* last = mc->AllocateTempOutputTensor(node, outputs - 1);
    if (last != nullptr && (last->type == kTfLiteFloat32 || outputs == 3)) {
      data->hat_output = outputs - 1;
    }
    if (last != nullptr) mc->DeallocateTempTfLiteTensor(last);
  }
  data->mask_output = outputs - (data->hat_output >= 0 ? 1 : 0) == 2 ? 1 : -1;
  TfLiteTensor* input = mc->AllocateTempInputTensor(node, kInputTensor);
  TfLiteTensor* filter = mc->AllocateTempInputTensor(node, kFilterTensor);
  TfLiteTensor* bias = node->inputs->size == 3
                           ? mc->AllocateTempInputTensor(node, kBiasTensor)
                           : nullptr;
  TfLiteTensor* output = mc->AllocateTempOutputTensor(node, kOutputTensor);
  TfLiteTensor* mask =
      data->mask_output >= 0
          ? mc->AllocateTempOutputTensor(node, data->mask_output)
          : nullptr;
  TfLiteTensor* filter_hat =
      data->hat_output >= 0
          ? mc->AllocateTempOutputTensor(node, data->hat_output)
          : nullptr;
  const TfLiteStatus status = Validate(context, data, input, filter, bias,
                                       output, mask, filter_hat);
  for (TfLiteTensor* t : {input, filter, bias, output, mask, filter_hat}) {
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
      data->mask_output >= 0
          ? tflite::micro::GetTensorData<uint8_t>(tflite::micro::GetEvalOutput(
                context, node, data->mask_output))
          : nullptr;
  reference::ConvInt8(
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
  const reference::ConvGeometry& g = data->geometry;
  const float* bias =
      node->inputs->size == 3
          ? tflite::micro::GetOptionalTensorData<float>(
                tflite::micro::GetEvalInput(context, node, kBiasTensor))
          : nullptr;
  uint8_t* mask =
      data->mask_output >= 0
          ? tflite::micro::GetTensorData<uint8_t>(tflite::micro::GetEvalOutput(
                context, node, data->mask_output))
          : nullptr;
  const float* filter = tflite::micro::GetTensorData<float>(
      tflite::micro::GetEvalInput(context, node, kFilterTensor));
  const float* input = tflite::micro::GetTensorData<float>(
      tflite::micro::GetEvalInput(context, node, kInputTensor));
  float* output = tflite::micro::GetTensorData<float>(
      tflite::micro::GetEvalOutput(context, node, kOutputTensor));
  const int32_t fan_in = reference::FilterFanIn(g);
  if (data->standardize && data->hat_output < 0) {
    float* stats = static_cast<float*>(
        context->GetScratchBuffer(context, data->scratch_index));
    reference::WeightStandardizeStats(filter, g.out_c, fan_in, data->epsilon,
                                      stats);
    reference::ConvStandardized(g, input, filter, stats, bias,
                                data->activation, output, mask);
    return kTfLiteOk;
  }
  if (data->standardize) {
    float* filter_hat = tflite::micro::GetTensorData<float>(
        tflite::micro::GetEvalOutput(context, node, data->hat_output));
    reference::WeightStandardize(filter, g.out_c, fan_in, data->epsilon,
                                 filter_hat);
    filter = filter_hat;
  }
  reference::Conv(g, input, filter, bias, data->activation, output, mask);
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_TL_CONV() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Eval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
