// TL_INVERTED_RESIDUAL_UPDATE: TFLite Micro adapter of
// reference/inverted_residual_update.h, the backward of an int8
// inverted-residual block whose depthwise conv trains (frozen 1x1 expand ->
// depthwise, chosen channels' weights and/or its bias trained -> linear 1x1
// project, frozen or trained too), streamed by rows: bit-identical to
// TL_CONV_INPUT_GRAD or TL_CONV_UPDATE (project, with its fused input
// gradient) -> TL_DEPTHWISE_UPDATE (with its fused input gradient) ->
// TL_CONV_INPUT_GRAD (expand) without their two expanded-width float maps.
//
// in:  0 grad_output f32 [N, Ho, Wo, Cout] (the project output's gradient),
//      1 [grad_output_mask] uint8 [ceil(N*Ho*Wo*Cout / 8)],
//      2 project_filter int8 [Cout, 1, 1, E] (per-channel, axis 0); with a
//        trained project filter a variable tensor (re-quantized after the
//        step),
//      3 depthwise_filter int8 [1, kh, kw, E] (per-channel, axis 3): what
//        the forward reads; with a trained filter a variable tensor (the
//        int8 copy of the master, re-quantized after the step),
//      4 [depthwise_mask] uint8 [ceil(N*Ho*Wo*E / 8)],
//      5 expand_filter int8 [E, 1, 1, Cin] (per-channel, axis 0),
//      6 [expand_mask] uint8 [ceil(N*H*W*E / 8)],
//      7 [input] int8 [N, H, W, E] or [N, H, W, K] (the saved depthwise
//        input, per-tensor; only the chosen channels when K < E; required
//        iff filter is given),
//      8 [channels] int32 [K] (the trained depthwise channels; absent: all),
//      9 [filter] f32 variable [1, kh, kw, K] (the float master),
//      10 [bias] f32 variable [E], 11 [bias_q] int32 variable [E]
//        (per-channel scales, needs bias),
//      12..16 the project's TL_CONV_UPDATE inputs 2, 3, 4, 6, 7 (absent: it
//        is frozen): 12 [project_input] int8 [N, Ho, Wo, E] or [N, Ho, Wo, K]
//        (its saved input, per-tensor; only the chosen channels when
//        project_channel_axis is 1 and K < E; required iff 14 is given),
//        13 [project_channels] int32 [K] (absent: all of the axis),
//        14 [project_master] f32 variable [K, 1, 1, E] (axis 0) or
//        [Cout, 1, 1, K] (axis 1), 15 [project_bias] f32 variable [Cout],
//        16 [project_bias_q] int32 variable [Cout] (needs 15).
//      Something must train: input 9, 10, 14 or 15.
// out: [grad_input] f32 [N, H, W, Cin], through the step's starting filters.
//      Without it (no output) the backward stops at the depthwise (the
//      earliest block the train step reaches): inputs 5 and 6 are then
//      absent, the depthwise filter trains (input 7 gives N, H, W) and only
//      the updates run.
// options: "learning_rate", "padding" (0 VALID, 1 SAME), "qas" (bool),
//          "stride_h", "stride_w" (the depthwise's), as TL_DEPTHWISE_UPDATE;
//          "project_channel_axis" (0 output, 1 input channels), as
//          TL_CONV_UPDATE's channel_axis
// Persistent: the OpData (scales read in place from the flatbuffer).
// Scratch: TL_INVERTED_RESIDUAL_INPUT_GRAD's, plus one float per chosen tap
// and per channel: 4 * ((ceil(kh / stride_h) * Wo + W) * E + K*kh*kw + E) B.
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/conv_update.h"
#include "tflm_kernels/reference/inverted_residual_update.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/parameter_update.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr const char* kOp = "TL_INVERTED_RESIDUAL_UPDATE";
constexpr int kGradOutputTensor = 0;
constexpr int kGradOutputMaskTensor = 1;
constexpr int kProjectFilterTensor = 2;
constexpr int kDepthwiseFilterTensor = 3;
constexpr int kDepthwiseMaskTensor = 4;
constexpr int kExpandFilterTensor = 5;
constexpr int kExpandMaskTensor = 6;
constexpr int kInputTensor = 7;
constexpr int kChannelsTensor = 8;
constexpr int kFilterTensor = 9;
constexpr int kBiasTensor = 10;
constexpr int kBiasQTensor = 11;
constexpr int kProjectInputTensor = 12;
constexpr int kProjectChannelsTensor = 13;
constexpr int kProjectMasterTensor = 14;
constexpr int kProjectBiasTensor = 15;
constexpr int kProjectBiasQTensor = 16;
constexpr int kNumInputs = 17;
constexpr int kGradInputTensor = 0;

constexpr size_t kLearningRateIndex = 0;       // "learning_rate"
constexpr size_t kPaddingIndex = 1;            // "padding"
constexpr size_t kProjectChannelAxisIndex = 2;  // "project_channel_axis"
constexpr size_t kQasIndex = 3;                // "qas"
constexpr size_t kStrideHIndex = 4;            // "stride_h"
constexpr size_t kStrideWIndex = 5;            // "stride_w"
constexpr size_t kNumOptions = 6;

struct OpData {
  bool options_ok;
  ConvOptions conv;
  reference::SgdOptions sgd;
  reference::InvertedResidualInputGradShape shape;
  reference::ActivationQuantization quant;
  int32_t input_depth;
  int32_t num_channels;  // K (0 when only the bias trains)
  bool trains_filter;
  float* project_scales;
  float* depthwise_scales;
  float* expand_scales;
  float* bias_scales;
  // The project's update (TL_CONV_UPDATE's fields).
  int32_t project_channel_axis;
  bool trains_project;
  bool trains_project_filter;
  reference::ActivationQuantization project_quant;
  int32_t project_input_depth;
  int32_t project_num_channels;  // K, or every channel of the axis
  int32_t project_axis_size;
  float* project_bias_scales;
  int scratch_index;
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data == nullptr) return nullptr;
  data->project_scales = data->depthwise_scales = data->expand_scales =
      data->bias_scales = data->project_bias_scales = nullptr;
  data->options_ok = OptionCount(buffer, length) == kNumOptions;
  if (!data->options_ok) return data;
  data->sgd.learning_rate = OptionAsFloat(buffer, length, kLearningRateIndex);
  data->sgd.qas = OptionAsBool(buffer, length, kQasIndex);
  const int32_t padding = OptionAsInt32(buffer, length, kPaddingIndex);
  data->conv.padding =
      padding == 1 ? reference::Padding::kSame : reference::Padding::kValid;
  data->conv.stride_h = OptionAsInt32(buffer, length, kStrideHIndex);
  data->conv.stride_w = OptionAsInt32(buffer, length, kStrideWIndex);
  data->project_channel_axis =
      OptionAsInt32(buffer, length, kProjectChannelAxisIndex);
  data->options_ok = (padding == 0 || padding == 1) &&
                     (data->project_channel_axis == 0 ||
                      data->project_channel_axis == 1) &&
                     data->conv.stride_h > 0 && data->conv.stride_w > 0;
  return data;
}

bool IsInt8Rank4(const TfLiteTensor* t) {
  return t != nullptr && t->type == kTfLiteInt8 && HasRank(t, 4);
}

// The block: shapes of the three filters, grad_output and grad_input (or,
// stopping at the depthwise, of the saved depthwise input).
TfLiteStatus ValidateBlock(TfLiteContext* context, OpData* data,
                           TfLiteTensor* const* t,
                           const TfLiteTensor* grad_input, bool stops) {
  const TfLiteTensor* dy = t[kGradOutputTensor];
  TL_TFLM_ENSURE(dy != nullptr && dy->type == kTfLiteFloat32 && HasRank(dy, 4),
                 "%s: grad_output must be float32 NHWC", kOp);
  const TfLiteTensor* dw = t[kDepthwiseFilterTensor];
  TL_TFLM_ENSURE(IsInt8Rank4(dw) && dw->dims->data[0] == 1,
                 "%s: depthwise_filter must be int8 [1, kh, kw, E]", kOp);
  const int32_t e_c = dw->dims->data[3];
  const int* y = dy->dims->data;
  if (stops) {
    TL_TFLM_ENSURE(t[kExpandFilterTensor] == nullptr &&
                       t[kExpandMaskTensor] == nullptr,
                   "%s: without grad_input the backward stops at the "
                   "depthwise: expand_filter and expand_mask must be absent",
                   kOp);
    TL_TFLM_ENSURE(IsInt8Rank4(t[kInputTensor]) && t[kFilterTensor] != nullptr,
                   "%s: without grad_input the depthwise filter must train "
                   "(input 9) with its saved int8 input (input 7), which "
                   "gives the block's input size", kOp);
  } else {
    TL_TFLM_ENSURE(grad_input != nullptr &&
                       grad_input->type == kTfLiteFloat32 &&
                       HasRank(grad_input, 4),
                   "%s: grad_input must be float32 NHWC", kOp);
  }
  // N, H, W (and Cin) of the block's input.
  const int* x = stops ? t[kInputTensor]->dims->data : grad_input->dims->data;
  const TfLiteTensor* pf = t[kProjectFilterTensor];
  TL_TFLM_ENSURE(IsInt8Rank4(pf) && pf->dims->data[0] == y[3] &&
                     pf->dims->data[1] == 1 && pf->dims->data[2] == 1 &&
                     pf->dims->data[3] == e_c,
                 "%s: project_filter must be int8 [%d, 1, 1, %d] (grad_output's "
                 "channels, the depthwise channels)", kOp, y[3],
                 static_cast<int>(e_c));
  const TfLiteTensor* ef = t[kExpandFilterTensor];
  TL_TFLM_ENSURE(stops || (IsInt8Rank4(ef) && ef->dims->data[0] == e_c &&
                           ef->dims->data[1] == 1 && ef->dims->data[2] == 1 &&
                           ef->dims->data[3] == x[3]),
                 "%s: expand_filter must be int8 [%d, 1, 1, %d] (the depthwise "
                 "channels, grad_input's channels)", kOp, static_cast<int>(e_c),
                 x[3]);
  reference::InvertedResidualInputGradShape& shape = data->shape;
  shape.batch = x[0];
  shape.in_h = x[1];
  shape.in_w = x[2];
  shape.in_c = stops ? 0 : x[3];
  shape.expanded_c = e_c;
  shape.out_c = y[3];
  shape.filter_h = dw->dims->data[1];
  shape.filter_w = dw->dims->data[2];
  shape.stride_h = data->conv.stride_h;
  shape.stride_w = data->conv.stride_w;
  shape.has_expand = !stops;
  shape.stops_at_depthwise = stops;
  const reference::Padding padding = data->conv.padding;
  shape.out_h = reference::ConvOutputSize(padding, shape.in_h, shape.filter_h,
                                          shape.stride_h);
  shape.out_w = reference::ConvOutputSize(padding, shape.in_w, shape.filter_w,
                                          shape.stride_w);
  TL_TFLM_ENSURE(shape.out_h > 0 && shape.out_w > 0 && y[0] == shape.batch &&
                     y[1] == shape.out_h && y[2] == shape.out_w,
                 "%s: grad_output is %dx%dx%dx%d but the block's output is "
                 "%dx%dx%dx%d", kOp, y[0], y[1], y[2], y[3], x[0],
                 static_cast<int>(shape.out_h), static_cast<int>(shape.out_w),
                 y[3]);
  const int64_t in_elements =
      static_cast<int64_t>(shape.batch) * shape.in_h * shape.in_w * e_c;
  TL_TFLM_ENSURE(
      in_elements <= INT32_MAX && ElementCount(dy->dims) <= INT32_MAX,
      "%s: the block is too large", kOp);
  shape.pad_top = reference::ConvPaddingBefore(
      padding, shape.in_h, shape.filter_h, shape.stride_h, shape.out_h);
  shape.pad_left = reference::ConvPaddingBefore(
      padding, shape.in_w, shape.filter_w, shape.stride_w, shape.out_w);
  reference::ChooseInvertedResidualGradOrder(&shape);
  const int64_t out_pixels =
      static_cast<int64_t>(shape.batch) * shape.out_h * shape.out_w;
  TF_LITE_ENSURE_OK(context, CheckMask(kOp, t[kGradOutputMaskTensor],
                                       out_pixels * shape.out_c));
  TF_LITE_ENSURE_OK(context, CheckMask(kOp, t[kDepthwiseMaskTensor],
                                       out_pixels * e_c));
  TF_LITE_ENSURE_OK(context, CheckMask(kOp, t[kExpandMaskTensor], in_elements));
  TF_LITE_ENSURE_OK(context, CopyFilterScales(context, kOp, pf, 0, shape.out_c,
                                               &data->project_scales));
  TF_LITE_ENSURE_OK(context, CopyFilterScales(context, kOp, dw, 3, e_c,
                                               &data->depthwise_scales));
  data->expand_scales = nullptr;
  if (stops) return kTfLiteOk;
  return CopyFilterScales(context, kOp, ef, 0, e_c, &data->expand_scales);
}

// The depthwise's trained parameters and the saved input their gradients read.
TfLiteStatus ValidateParameters(TfLiteContext* context, OpData* data,
                                TfLiteTensor* const* t) {
  const reference::InvertedResidualInputGradShape& shape = data->shape;
  const int32_t e_c = shape.expanded_c;
  const TfLiteTensor* filter = t[kFilterTensor];
  const TfLiteTensor* bias = t[kBiasTensor];
  const TfLiteTensor* bias_q = t[kBiasQTensor];
  const TfLiteTensor* input = t[kInputTensor];
  const TfLiteTensor* channels = t[kChannelsTensor];
  data->trains_filter = filter != nullptr;
  TL_TFLM_ENSURE(bias_q == nullptr || bias != nullptr,
                 "%s: bias_q (input 11) needs its float master as bias "
                 "(input 10)", kOp);
  data->num_channels = 0;
  data->input_depth = 0;
  data->quant = reference::kNoQuantization;
  if (data->trains_filter) {
    TF_LITE_ENSURE_OK(context, CheckVariable(kOp, "depthwise_filter",
                                             t[kDepthwiseFilterTensor],
                                             kTfLiteInt8));
    TF_LITE_ENSURE_OK(context,
                      CheckVariable(kOp, "filter", filter, kTfLiteFloat32));
    int32_t num_listed = e_c;
    if (channels != nullptr) {
      TL_TFLM_ENSURE(channels->type == kTfLiteInt32 && HasRank(channels, 1),
                     "%s: channels must be a 1-D int32 tensor", kOp);
      num_listed = channels->dims->data[0];
      if (IsConstantTensor(channels)) {
        const int32_t bad = reference::FirstChannelOutOfRange(
            channels->data.i32, num_listed, e_c);
        TL_TFLM_ENSURE(bad < 0, "%s: channel %d (position %d) is outside "
                       "[0, %d)", kOp,
                       bad < 0 ? 0 : static_cast<int>(channels->data.i32[bad]),
                       static_cast<int>(bad), static_cast<int>(e_c));
      }
    }
    data->num_channels = num_listed;
    TL_TFLM_ENSURE(HasRank(filter, 4) && filter->dims->data[0] == 1 &&
                       filter->dims->data[1] == shape.filter_h &&
                       filter->dims->data[2] == shape.filter_w &&
                       filter->dims->data[3] == num_listed,
                   "%s: filter must be float32 [1, %d, %d, %d] (the float "
                   "master of the chosen channels)", kOp,
                   static_cast<int>(shape.filter_h),
                   static_cast<int>(shape.filter_w),
                   static_cast<int>(num_listed));
    TL_TFLM_ENSURE(IsInt8Rank4(input) && input->dims->data[0] == shape.batch &&
                       input->dims->data[1] == shape.in_h &&
                       input->dims->data[2] == shape.in_w &&
                       (input->dims->data[3] == e_c ||
                        input->dims->data[3] == num_listed),
                   "%s: input must be the saved int8 depthwise input [%d, %d, "
                   "%d, %d] (or only the %d chosen channels)", kOp,
                   static_cast<int>(shape.batch), static_cast<int>(shape.in_h),
                   static_cast<int>(shape.in_w), static_cast<int>(e_c),
                   static_cast<int>(num_listed));
    TF_LITE_ENSURE_OK(context, ReadInputQuantization(kOp, input, &data->quant));
    data->input_depth = input->dims->data[3];
  } else {
    TL_TFLM_ENSURE(input == nullptr && channels == nullptr,
                   "%s: input and channels only serve a trained filter; a "
                   "bias is updated at every channel", kOp);
  }
  if (bias != nullptr) {
    TF_LITE_ENSURE_OK(context, CheckVariable(kOp, "bias", bias, kTfLiteFloat32));
    TL_TFLM_ENSURE(HasRank(bias, 1) && bias->dims->data[0] == e_c,
                   "%s: bias must be [%d]", kOp, static_cast<int>(e_c));
  }
  if (bias_q != nullptr) {
    TF_LITE_ENSURE_OK(context,
                      CheckVariable(kOp, "bias_q", bias_q, kTfLiteInt32));
    TL_TFLM_ENSURE(HasRank(bias_q, 1) && bias_q->dims->data[0] == e_c,
                   "%s: bias_q must be [%d]", kOp, static_cast<int>(e_c));
    TF_LITE_ENSURE_OK(context, CopyChannelScales(context, kOp, "bias_q", bias_q,
                                                 0, e_c, &data->bias_scales));
  }
  return kTfLiteOk;
}

// The project's trained parameters and the saved input their gradients read:
// TL_CONV_UPDATE's checks for a 1x1 stride-1 conv from E to Cout channels.
TfLiteStatus ValidateProject(TfLiteContext* context, OpData* data,
                             TfLiteTensor* const* t) {
  const reference::InvertedResidualInputGradShape& shape = data->shape;
  const int32_t e_c = shape.expanded_c;
  const int32_t out_c = shape.out_c;
  const TfLiteTensor* input = t[kProjectInputTensor];
  const TfLiteTensor* channels = t[kProjectChannelsTensor];
  const TfLiteTensor* master = t[kProjectMasterTensor];
  const TfLiteTensor* bias = t[kProjectBiasTensor];
  const TfLiteTensor* bias_q = t[kProjectBiasQTensor];
  data->trains_project_filter = master != nullptr;
  data->trains_project = master != nullptr || bias != nullptr;
  data->project_quant = reference::kNoQuantization;
  data->project_input_depth = 0;
  data->project_num_channels = 0;
  const bool axis1 = data->project_channel_axis == 1;
  data->project_axis_size = axis1 ? e_c : out_c;
  TL_TFLM_ENSURE(bias_q == nullptr || bias != nullptr,
                 "%s: project_bias_q (input 16) needs its float master as "
                 "project_bias (input 15)", kOp);
  if (data->trains_project_filter) {
    TF_LITE_ENSURE_OK(context, CheckVariable(kOp, "project_filter",
                                             t[kProjectFilterTensor],
                                             kTfLiteInt8));
    TF_LITE_ENSURE_OK(context, CheckVariable(kOp, "project_master", master,
                                             kTfLiteFloat32));
    int32_t num_listed = data->project_axis_size;
    if (channels != nullptr) {
      TL_TFLM_ENSURE(channels->type == kTfLiteInt32 && HasRank(channels, 1),
                     "%s: project_channels must be a 1-D int32 tensor", kOp);
      num_listed = channels->dims->data[0];
      if (IsConstantTensor(channels)) {
        const int32_t bad = reference::FirstChannelOutOfRange(
            channels->data.i32, num_listed, data->project_axis_size);
        TL_TFLM_ENSURE(bad < 0, "%s: project channel %d (position %d) is "
                       "outside [0, %d)", kOp,
                       bad < 0 ? 0 : static_cast<int>(channels->data.i32[bad]),
                       static_cast<int>(bad),
                       static_cast<int>(data->project_axis_size));
      }
    }
    data->project_num_channels = num_listed;
    const int32_t want0 = axis1 ? out_c : num_listed;
    const int32_t want3 = axis1 ? num_listed : e_c;
    TL_TFLM_ENSURE(HasRank(master, 4) && master->dims->data[0] == want0 &&
                       master->dims->data[1] == 1 &&
                       master->dims->data[2] == 1 &&
                       master->dims->data[3] == want3,
                   "%s: project_master must be float32 [%d, 1, 1, %d] (the "
                   "float master of the chosen channels, project_channel_axis "
                   "%d)", kOp, static_cast<int>(want0),
                   static_cast<int>(want3),
                   static_cast<int>(data->project_channel_axis));
    // Only the chosen input channels (axis 1), or the whole depthwise output.
    const int32_t depth = axis1 && num_listed < e_c ? num_listed : e_c;
    TL_TFLM_ENSURE(IsInt8Rank4(input) && input->dims->data[0] == shape.batch &&
                       input->dims->data[1] == shape.out_h &&
                       input->dims->data[2] == shape.out_w &&
                       input->dims->data[3] == depth,
                   "%s: project_input must be the project's saved int8 input "
                   "[%d, %d, %d, %d]", kOp, static_cast<int>(shape.batch),
                   static_cast<int>(shape.out_h), static_cast<int>(shape.out_w),
                   static_cast<int>(depth));
    TF_LITE_ENSURE_OK(context,
                      ReadInputQuantization(kOp, input, &data->project_quant));
    data->project_input_depth = depth;
  } else {
    TL_TFLM_ENSURE(input == nullptr && channels == nullptr,
                   "%s: project_input and project_channels only serve a "
                   "trained project_master; a bias is updated at every "
                   "channel", kOp);
  }
  if (bias != nullptr) {
    TF_LITE_ENSURE_OK(context, CheckVariable(kOp, "project_bias", bias,
                                             kTfLiteFloat32));
    TL_TFLM_ENSURE(HasRank(bias, 1) && bias->dims->data[0] == out_c,
                   "%s: project_bias must be [%d]", kOp,
                   static_cast<int>(out_c));
  }
  if (bias_q != nullptr) {
    TF_LITE_ENSURE_OK(context, CheckVariable(kOp, "project_bias_q", bias_q,
                                             kTfLiteInt32));
    TL_TFLM_ENSURE(HasRank(bias_q, 1) && bias_q->dims->data[0] == out_c,
                   "%s: project_bias_q must be [%d]", kOp,
                   static_cast<int>(out_c));
    TF_LITE_ENSURE_OK(context, CopyChannelScales(
                                   context, kOp, "project_bias_q", bias_q, 0,
                                   out_c, &data->project_bias_scales));
  }
  TL_TFLM_ENSURE(data->trains_filter || t[kBiasTensor] != nullptr ||
                     data->trains_project,
                 "%s: nothing to update: give a filter (input 9), a bias "
                 "(input 10), a project_master (input 14) or a project_bias "
                 "(input 15)", kOp);
  return kTfLiteOk;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  TL_TFLM_ENSURE(node->inputs->size == kNumInputs &&
                     (node->outputs->size == 1 || node->outputs->size == 0),
                 "%s: expects 17 inputs (grad_output, [grad_output_mask], "
                 "project_filter, depthwise_filter, [depthwise_mask], "
                 "expand_filter, [expand_mask], [input], [channels], [filter], "
                 "[bias], [bias_q], [project_input], [project_channels], "
                 "[project_master], [project_bias], [project_bias_q]; absent "
                 "ones -1) and 1 output (grad_input) or none, got %d and %d",
                 kOp,
                 node->inputs->size, node->outputs->size);
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", kOp);
  TL_TFLM_ENSURE(data->options_ok, "%s: options must be learning_rate, "
                 "padding (0/1), project_channel_axis (0/1), qas, stride_h, "
                 "stride_w (positive)", kOp);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* t[kNumInputs] = {};
  for (int i = 0; i < kNumInputs; ++i) {
    t[i] = mc->AllocateTempInputTensor(node, i);
  }
  const bool stops = node->outputs->size == 0;
  TfLiteTensor* grad_input =
      stops ? nullptr : mc->AllocateTempOutputTensor(node, kGradInputTensor);
  TfLiteStatus status = ValidateBlock(context, data, t, grad_input, stops);
  if (status == kTfLiteOk) status = ValidateParameters(context, data, t);
  if (status == kTfLiteOk) status = ValidateProject(context, data, t);
  for (TfLiteTensor* tensor : t) {
    if (tensor != nullptr) mc->DeallocateTempTfLiteTensor(tensor);
  }
  if (grad_input != nullptr) mc->DeallocateTempTfLiteTensor(grad_input);
  TF_LITE_ENSURE_OK(context, status);
  const int32_t scratch_floats = reference::InvertedResidualUpdateScratchFloats(
      data->shape, data->num_channels);
  const size_t scratch_bytes =
      sizeof(float) * static_cast<size_t>(scratch_floats);
  return context->RequestScratchBufferInArena(context, scratch_bytes,
                                              &data->scratch_index);
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  using tflite::micro::GetEvalInput;
  using tflite::micro::GetMutableEvalInput;
  using tflite::micro::GetOptionalTensorData;
  const auto optional = [context, node](int index) {
    return GetEvalInput(context, node, index);
  };
  const auto* data = static_cast<const OpData*>(node->user_data);
  auto* scratch = static_cast<float*>(
      context->GetScratchBuffer(context, data->scratch_index));
  TL_TFLM_ENSURE(scratch != nullptr, "%s: no scratch buffer", kOp);
  int8_t* depthwise_filter = tflite::micro::GetTensorData<int8_t>(
      GetMutableEvalInput(context, node, kDepthwiseFilterTensor));
  int8_t* project_filter = tflite::micro::GetTensorData<int8_t>(
      GetMutableEvalInput(context, node, kProjectFilterTensor));
  reference::InvertedResidualDepthwiseUpdate u;
  u.input = GetOptionalTensorData<int8_t>(optional(kInputTensor));
  u.quant = data->quant;
  u.input_depth = data->input_depth;
  u.channels = GetOptionalTensorData<int32_t>(optional(kChannelsTensor));
  u.num_channels = data->num_channels;
  u.sgd = data->sgd;
  u.params = EvalTrainedParameters(
      context, node, kFilterTensor,
      data->trains_filter ? depthwise_filter : nullptr,
      data->depthwise_scales, kBiasTensor, kBiasQTensor, data->bias_scales);
  const reference::InvertedResidualGradMasks masks = {
      GetOptionalTensorData<uint8_t>(optional(kGradOutputMaskTensor)),
      GetOptionalTensorData<uint8_t>(optional(kDepthwiseMaskTensor)),
      GetOptionalTensorData<uint8_t>(optional(kExpandMaskTensor))};
  reference::InvertedResidualProjectUpdate pu;
  pu.input = GetOptionalTensorData<int8_t>(optional(kProjectInputTensor));
  pu.quant = data->project_quant;
  pu.input_depth = data->project_input_depth;
  pu.channels =
      GetOptionalTensorData<int32_t>(optional(kProjectChannelsTensor));
  pu.num_channels = data->project_num_channels;
  pu.channel_axis = data->project_channel_axis;
  pu.params = EvalTrainedParameters(
      context, node, kProjectMasterTensor,
      data->trains_project_filter ? project_filter : nullptr,
      data->project_scales, kProjectBiasTensor, kProjectBiasQTensor,
      data->project_bias_scales);
  const reference::Int8Filter project = {project_filter, data->project_scales};
  const reference::Int8Filter depthwise = {depthwise_filter,
                                           data->depthwise_scales};
  const bool stops = data->shape.stops_at_depthwise;
  const reference::Int8Filter expand = {
      GetOptionalTensorData<int8_t>(optional(kExpandFilterTensor)),
      data->expand_scales};
  const bool ok = reference::InvertedResidualUpdate(
      data->shape,
      tflite::micro::GetTensorData<float>(
          GetEvalInput(context, node, kGradOutputTensor)),
      project, depthwise, expand, masks, u,
      stops ? nullptr
            : tflite::micro::GetTensorData<float>(
                  tflite::micro::GetEvalOutput(context, node, kGradInputTensor)),
      scratch, data->trains_project ? &pu : nullptr);
  if (!ok) {
    const int32_t bad = reference::FirstChannelOutOfRange(
        u.channels, u.num_channels, data->shape.expanded_c);
    if (bad >= 0) {
      MicroPrintf("%s: channel %d (position %d) is outside [0, %d)", kOp,
                  static_cast<int>(u.channels[bad]), static_cast<int>(bad),
                  static_cast<int>(data->shape.expanded_c));
    } else {
      const int32_t p = reference::FirstChannelOutOfRange(
          pu.channels, pu.num_channels, data->project_axis_size);
      MicroPrintf("%s: project channel %d (position %d) is outside [0, %d)",
                  kOp, p < 0 ? 0 : static_cast<int>(pu.channels[p]),
                  static_cast<int>(p),
                  static_cast<int>(data->project_axis_size));
    }
    return kTfLiteError;
  }
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_TL_INVERTED_RESIDUAL_UPDATE() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Eval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
