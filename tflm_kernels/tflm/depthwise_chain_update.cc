// TL_DEPTHWISE_CHAIN_UPDATE: TFLite Micro adapter of
// reference/depthwise_chain_update.h. The backward pass of a bias-trained
// DEPTHWISE_CONV_2D (depth multiplier 1) and of the bias-trained layer that
// produced its input, in one op: the depthwise input gradient exists only
// row by row in a scratch buffer of (W + 1) * C floats.
//
// Inputs by position (an absent optional input is -1):
//   0 grad_output f32 [N, Ho, Wo, C]
//   1 mask uint8 (optional): 1-bit mask of the depthwise's activation
//   2 filter: the depthwise forward's [1, kh, kw, C], int8 per-channel (zero
//     points 0) or float32
//   3 bias f32 variable [C] (optional): the depthwise bias
//   4 bias_q int32 variable [C] (optional, needs bias)
//   5 up_mask uint8 (optional): 1-bit mask of the upstream's activation
//     (N * H * W * C elements, depthwise input order)
//   6 up_bias f32 variable [C]: the upstream's bias
//   7 up_bias_q int32 variable [C] (optional)
//   8 up_filter (optional, with output 0): the upstream 1x1 conv's filter,
//     int8 per-channel or float32, [C, 1, 1, Ci] or [C, Ci]
//   9 ds_filter (optional, with 10): the downstream 1x1 conv's filter (the
//     conv without activation reading the depthwise output), int8
//     per-channel or float32, [Co, 1, 1, C] or [Co, C]; input 0 is then
//     its output gradient [N, Ho, Wo, Co], and the depthwise grad_output is
//     computed row by row
//   10 ds_bias f32 variable [Co], 11 ds_bias_q int32 variable (optional)
// Output (optional, with input 8): 0 up_grad_input f32 [N, H, W, Ci].
// options: "in_h", "in_w" (the depthwise input's size), "learning_rate",
//          "padding" (0 VALID, 1 SAME), "qas" (bool), "stride_h", "stride_w"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/depthwise_chain_update.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/parameter_update.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr const char* kOp = "TL_DEPTHWISE_CHAIN_UPDATE";
constexpr size_t kInHIndex = 0;           // "in_h"
constexpr size_t kInWIndex = 1;           // "in_w"
constexpr size_t kLearningRateIndex = 2;  // "learning_rate"
constexpr size_t kPaddingIndex = 3;       // "padding"
constexpr size_t kQasIndex = 4;           // "qas"
constexpr size_t kStrideHIndex = 5;       // "stride_h"
constexpr size_t kStrideWIndex = 6;       // "stride_w"
constexpr size_t kNumOptions = 7;

constexpr int kGradOutput = 0;
constexpr int kMask = 1;
constexpr int kFilter = 2;
constexpr int kBias = 3;
constexpr int kBiasQ = 4;
constexpr int kUpMask = 5;
constexpr int kUpBias = 6;
constexpr int kUpBiasQ = 7;
constexpr int kUpFilter = 8;
constexpr int kDsFilter = 9;
constexpr int kDsBias = 10;
constexpr int kDsBiasQ = 11;
constexpr int kNumInputs = 8;
constexpr int kNumInputsWithGrad = 9;
constexpr int kNumInputsWithDownstream = 12;

struct OpData {
  bool options_ok;
  ConvOptions conv;
  reference::SgdOptions sgd;
  int32_t in_h;
  int32_t in_w;
  reference::ConvGeometry geometry;
  float* filter_scales;     // int8 filter
  float* bias_scales;       // with bias_q
  float* up_bias_scales;    // with up_bias_q
  float* up_filter_scales;  // int8 up_filter
  int32_t up_in_c;
  bool has_up_grad;
  bool has_downstream;
  int32_t ds_out_c;
  float* ds_filter_scales;  // int8 ds_filter
  float* ds_bias_scales;    // with ds_bias_q
  int scratch;
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data == nullptr) return nullptr;
  data->options_ok = OptionCount(buffer, length) == kNumOptions;
  if (!data->options_ok) return data;
  data->in_h = OptionAsInt32(buffer, length, kInHIndex);
  data->in_w = OptionAsInt32(buffer, length, kInWIndex);
  data->sgd.learning_rate = OptionAsFloat(buffer, length, kLearningRateIndex);
  data->sgd.qas = OptionAsBool(buffer, length, kQasIndex);
  const int32_t padding = OptionAsInt32(buffer, length, kPaddingIndex);
  data->conv.padding =
      padding == 1 ? reference::Padding::kSame : reference::Padding::kValid;
  data->conv.stride_h = OptionAsInt32(buffer, length, kStrideHIndex);
  data->conv.stride_w = OptionAsInt32(buffer, length, kStrideWIndex);
  data->options_ok = (padding == 0 || padding == 1) && data->in_h > 0 &&
                     data->in_w > 0 && data->conv.stride_h > 0 &&
                     data->conv.stride_w > 0;
  return data;
}

// A float bias variable [c] and its optional int32 copy's scales.
TfLiteStatus CheckBias(TfLiteContext* context, const char* what,
                       const char* what_q, const TfLiteTensor* bias,
                       const TfLiteTensor* bias_q, int32_t c, float** scales) {
  *scales = nullptr;
  if (bias == nullptr) {
    TL_TFLM_ENSURE(bias_q == nullptr, "%s: %s needs its float master %s", kOp,
                   what_q, what);
    return kTfLiteOk;
  }
  TF_LITE_ENSURE_OK(context, CheckVariable(kOp, what, bias, kTfLiteFloat32));
  TL_TFLM_ENSURE(HasRank(bias, 1) && bias->dims->data[0] == c,
                 "%s: %s must be [%d]", kOp, what, static_cast<int>(c));
  if (bias_q == nullptr) return kTfLiteOk;
  TF_LITE_ENSURE_OK(context, CheckVariable(kOp, what_q, bias_q, kTfLiteInt32));
  TL_TFLM_ENSURE(HasRank(bias_q, 1) && bias_q->dims->data[0] == c,
                 "%s: %s must be [%d]", kOp, what_q, static_cast<int>(c));
  return CopyChannelScales(context, kOp, what_q, bias_q, 0, c, scales);
}

TfLiteStatus Validate(TfLiteContext* context, TfLiteTensor* const* in,
                      const TfLiteTensor* up_grad, OpData* data) {
  TL_TFLM_ENSURE(data->options_ok,
                 "%s: options must be in_h, in_w, learning_rate, padding "
                 "(0/1), qas, stride_h, stride_w (sizes and strides "
                 "positive)", kOp);
  int32_t go[4], f[4];
  TL_TFLM_ENSURE(in[kGradOutput] != nullptr &&
                     in[kGradOutput]->type == kTfLiteFloat32 &&
                     HasRank(in[kGradOutput], 4) && Dims4(in[kGradOutput], go),
                 "%s: grad_output must be float32 NHWC", kOp);
  const TfLiteTensor* filter = in[kFilter];
  // The depthwise channels: grad_output's, or the downstream filter's input.
  int32_t c = go[3];
  data->ds_filter_scales = nullptr;
  data->ds_bias_scales = nullptr;
  data->ds_out_c = 0;
  if (data->has_downstream) {
    const TfLiteTensor* df = in[kDsFilter];
    int32_t d[4];
    TL_TFLM_ENSURE(df != nullptr &&
                       (df->type == kTfLiteInt8 || df->type == kTfLiteFloat32) &&
                       Dims4(df, d) && d[0] == go[3] && d[1] == 1 && d[2] == 1 &&
                       d[3] > 0,
                   "%s: ds_filter (input 9) must be the downstream 1x1 conv's "
                   "int8 or float32 filter [%d, 1, 1, C] (or [%d, C])", kOp,
                   static_cast<int>(go[3]), static_cast<int>(go[3]));
    data->ds_out_c = go[3];
    c = d[3];
    if (df->type == kTfLiteInt8) {
      TF_LITE_ENSURE_OK(context, CopyFilterScales(context, kOp, df, 0, go[3],
                                                  &data->ds_filter_scales));
    }
    TL_TFLM_ENSURE(in[kDsBias] != nullptr,
                   "%s: ds_bias (input 10) is required with ds_filter", kOp);
    TF_LITE_ENSURE_OK(context,
                      CheckBias(context, "ds_bias", "ds_bias_q", in[kDsBias],
                                in[kDsBiasQ], go[3], &data->ds_bias_scales));
  }
  TF_LITE_ENSURE_OK(context,
                    CheckMask(kOp, in[kMask],
                              static_cast<int64_t>(go[0]) * go[1] * go[2] * c));
  TL_TFLM_ENSURE(filter != nullptr &&
                     (filter->type == kTfLiteInt8 ||
                      filter->type == kTfLiteFloat32) &&
                     HasRank(filter, 4) && Dims4(filter, f) && f[0] == 1 &&
                     f[3] == c,
                 "%s: filter (input 2) must be the depthwise forward's int8 "
                 "or float32 [1, kh, kw, %d] filter (depth multiplier 1)",
                 kOp, static_cast<int>(c));
  TL_TFLM_ENSURE(
      reference::MakeConvGeometry(go[0], data->in_h, data->in_w, c, c, f[1],
                                  f[2], data->conv.stride_h,
                                  data->conv.stride_w, data->conv.padding,
                                  &data->geometry) &&
          data->geometry.out_h == go[1] && data->geometry.out_w == go[2],
      "%s: grad_output is %dx%d but a %dx%d depthwise input gives a different "
      "output with these options", kOp, static_cast<int>(go[1]),
      static_cast<int>(go[2]), static_cast<int>(data->in_h),
      static_cast<int>(data->in_w));
  data->filter_scales = nullptr;
  if (filter->type == kTfLiteInt8) {
    TF_LITE_ENSURE_OK(context, CopyFilterScales(context, kOp, filter, 3, c,
                                                &data->filter_scales));
  }
  TF_LITE_ENSURE_OK(context, CheckBias(context, "bias", "bias_q", in[kBias],
                                       in[kBiasQ], c, &data->bias_scales));
  const int64_t in_elements =
      static_cast<int64_t>(go[0]) * data->in_h * data->in_w * c;
  TL_TFLM_ENSURE(in_elements <= INT32_MAX, "%s: depthwise input too large",
                 kOp);
  TF_LITE_ENSURE_OK(context, CheckMask(kOp, in[kUpMask], in_elements));
  TL_TFLM_ENSURE(in[kUpBias] != nullptr,
                 "%s: up_bias (input 6) is required: the upstream layer's "
                 "trained bias", kOp);
  TF_LITE_ENSURE_OK(context,
                    CheckBias(context, "up_bias", "up_bias_q", in[kUpBias],
                              in[kUpBiasQ], c, &data->up_bias_scales));
  data->up_filter_scales = nullptr;
  data->up_in_c = 0;
  if (data->has_up_grad) {
    const TfLiteTensor* uf = in[kUpFilter];
    int32_t u[4], gi[4];
    TL_TFLM_ENSURE(uf != nullptr &&
                       (uf->type == kTfLiteInt8 || uf->type == kTfLiteFloat32) &&
                       Dims4(uf, u) && u[0] == c && u[1] == 1 && u[2] == 1 &&
                       u[3] > 0,
                   "%s: up_filter (input 8) must be the upstream 1x1 conv's "
                   "int8 or float32 filter [%d, 1, 1, Ci] (or [%d, Ci])", kOp,
                   static_cast<int>(c), static_cast<int>(c));
    TL_TFLM_ENSURE(up_grad != nullptr && up_grad->type == kTfLiteFloat32 &&
                       HasRank(up_grad, 4) && Dims4(up_grad, gi) &&
                       gi[0] == go[0] && gi[1] == data->in_h &&
                       gi[2] == data->in_w && gi[3] == u[3],
                   "%s: up_grad_input must be float32 [%d, %d, %d, %d]", kOp,
                   static_cast<int>(go[0]), static_cast<int>(data->in_h),
                   static_cast<int>(data->in_w), static_cast<int>(u[3]));
    data->up_in_c = u[3];
    if (uf->type == kTfLiteInt8) {
      TF_LITE_ENSURE_OK(context, CopyFilterScales(context, kOp, uf, 0, c,
                                                  &data->up_filter_scales));
    }
  }
  TL_TFLM_ENSURE(!data->has_up_grad || !data->has_downstream ||
                     in[kUpFilter]->type == in[kDsFilter]->type,
                 "%s: up_filter and ds_filter must have the same type (int8 "
                 "or float32)", kOp);
  const size_t bytes =
      sizeof(float) *
      static_cast<size_t>(reference::DepthwiseChainScratchFloats(
          data->geometry, data->has_downstream));
  TL_TFLM_ENSURE(context->RequestScratchBufferInArena(context, bytes,
                                                      &data->scratch) ==
                     kTfLiteOk,
                 "%s: arena too small for a %d-byte row buffer", kOp,
                 static_cast<int>(bytes));
  return kTfLiteOk;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", kOp);
  const int num_inputs = node->inputs->size;
  const bool up_filter_given =
      num_inputs > kUpFilter && node->inputs->data[kUpFilter] >= 0;
  TL_TFLM_ENSURE((num_inputs == kNumInputs || num_inputs == kNumInputsWithGrad ||
                  num_inputs == kNumInputsWithDownstream) &&
                     node->outputs->size == (up_filter_given ? 1 : 0),
                 "%s: expects %d, %d or %d inputs (absent optional ones as -1) "
                 "and 1 output (the upstream's input gradient) exactly when "
                 "up_filter (input 8) is given, got %d and %d", kOp,
                 kNumInputs, kNumInputsWithGrad, kNumInputsWithDownstream,
                 num_inputs, node->outputs->size);
  data->has_up_grad = up_filter_given;
  data->has_downstream = num_inputs == kNumInputsWithDownstream;
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* in[kNumInputsWithDownstream] = {};
  for (int i = 0; i < node->inputs->size; ++i) {
    in[i] = mc->AllocateTempInputTensor(node, i);
  }
  TfLiteTensor* up_grad =
      data->has_up_grad ? mc->AllocateTempOutputTensor(node, 0) : nullptr;
  const TfLiteStatus status = Validate(context, in, up_grad, data);
  for (TfLiteTensor* t : in) {
    if (t != nullptr) mc->DeallocateTempTfLiteTensor(t);
  }
  if (up_grad != nullptr) mc->DeallocateTempTfLiteTensor(up_grad);
  return status;
}

template <typename FilterT, typename UpFilterT>
void Run(TfLiteContext* context, TfLiteNode* node, const OpData* data,
         const reference::TrainedParameters& dw,
         reference::ChainUpstream<UpFilterT> up) {
  using tflite::micro::GetEvalInput;
  using tflite::micro::GetOptionalTensorData;
  const float* grad_output = tflite::micro::GetTensorData<float>(
      GetEvalInput(context, node, kGradOutput));
  const uint8_t* mask =
      GetOptionalTensorData<uint8_t>(GetEvalInput(context, node, kMask));
  const FilterT* filter = tflite::micro::GetTensorData<FilterT>(
      GetEvalInput(context, node, kFilter));
  if (data->has_up_grad) {
    up.filter = tflite::micro::GetTensorData<UpFilterT>(
        GetEvalInput(context, node, kUpFilter));
    up.grad_input = tflite::micro::GetTensorData<float>(
        tflite::micro::GetEvalOutput(context, node, 0));
  }
  float* scratch =
      static_cast<float*>(context->GetScratchBuffer(context, data->scratch));
  reference::ChainDownstream<UpFilterT> ds = {};
  if (data->has_downstream) {
    ds.grad_output = grad_output;
    ds.filter = tflite::micro::GetTensorData<UpFilterT>(
        GetEvalInput(context, node, kDsFilter));
    ds.filter_scales = data->ds_filter_scales;
    ds.out_c = data->ds_out_c;
    ds.params = EvalTrainedParameters(context, node, -1, nullptr, nullptr,
                                      kDsBias, kDsBiasQ, data->ds_bias_scales);
  }
  reference::DepthwiseChainUpdate<FilterT, UpFilterT>(
      data->geometry, data->has_downstream ? nullptr : grad_output, mask,
      filter, data->filter_scales, data->sgd, dw, up, scratch,
      data->has_downstream ? &ds : nullptr);
}

template <typename FilterT>
TfLiteStatus RunWithUpstream(TfLiteContext* context, TfLiteNode* node,
                             const OpData* data,
                             const reference::TrainedParameters& dw,
                             const uint8_t* up_mask,
                             const reference::TrainedParameters& up_params) {
  // The 1x1 filters' type (up_filter and ds_filter share it).
  const TfLiteEvalTensor* uf =
      data->has_up_grad
          ? tflite::micro::GetEvalInput(context, node, kUpFilter)
          : (data->has_downstream
                 ? tflite::micro::GetEvalInput(context, node, kDsFilter)
                 : nullptr);
  if (uf != nullptr && uf->type == kTfLiteInt8) {
    reference::ChainUpstream<int8_t> up = {up_mask, nullptr,
                                           data->up_filter_scales,
                                           data->up_in_c, nullptr, up_params};
    Run<FilterT, int8_t>(context, node, data, dw, up);
  } else {
    reference::ChainUpstream<float> up = {up_mask, nullptr, nullptr,
                                          data->up_in_c, nullptr, up_params};
    Run<FilterT, float>(context, node, data, dw, up);
  }
  return kTfLiteOk;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  using tflite::micro::GetEvalInput;
  using tflite::micro::GetOptionalTensorData;
  const auto* data = static_cast<const OpData*>(node->user_data);
  // Biases only: no filter trains here.
  const reference::TrainedParameters dw = EvalTrainedParameters(
      context, node, -1, nullptr, nullptr, kBias, kBiasQ, data->bias_scales);
  const reference::TrainedParameters up =
      EvalTrainedParameters(context, node, -1, nullptr, nullptr, kUpBias,
                            kUpBiasQ, data->up_bias_scales);
  const uint8_t* up_mask =
      GetOptionalTensorData<uint8_t>(GetEvalInput(context, node, kUpMask));
  if (GetEvalInput(context, node, kFilter)->type == kTfLiteInt8) {
    return RunWithUpstream<int8_t>(context, node, data, dw, up_mask, up);
  }
  return RunWithUpstream<float>(context, node, data, dw, up_mask, up);
}

}  // namespace

TFLMRegistration* Register_TL_DEPTHWISE_CHAIN_UPDATE() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Eval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
