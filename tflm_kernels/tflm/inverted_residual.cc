// TL_INVERTED_RESIDUAL: TFLite Micro adapter of reference/inverted_residual.h,
// a frozen int8 inverted-residual block ([expand conv] -> kxk depthwise ->
// 1x1 project conv) streamed row by row, so that its expanded map is never
// an arena tensor. The expand is any one-group conv (a 1x1, or a stem such
// as a 3x3 stride-2 conv), with its own window, stride and padding.
// Bit-identical to TFLM's int8 CONV_2D -> DEPTHWISE_CONV_2D -> CONV_2D chain
// with the same quantization.
//
// in:  0 input int8 [N, H, W, Cin] (per-tensor quantization),
//      1 [expand_filter] int8 [E, kh_e, kw_e, Cin] (per-channel, axis 0; -1
//        when the block has no expand conv, then E = Cin and the
//        depthwise reads the input),
//      2 [expand_bias] int32 [E] (-1 together with expand_filter),
//      3 depthwise_filter int8 [1, kh, kw, E] (per-channel, axis 3),
//      4 depthwise_bias int32 [E],
//      5 project_filter int8 [Cout, 1, 1, E] (per-channel, axis 0),
//      6 project_bias int32 [Cout]
// out: 0 output int8 [N, Ho, Wo, Cout] (per-tensor quantization),
//      then either nothing or one mask per activated stage, in order:
//      [expand_mask] uint8 [ceil(N*He*We*E / 8)] (He x We: the expand conv's
//        output size; an expand conv with ReLU /
//        ReLU6) and [depthwise_mask] uint8 [ceil(N*Ho*Wo*E / 8)] (a ReLU /
//        ReLU6 depthwise), the 1-bit masks of the linear ranges on the
//        expanded map and the depthwise output that TL_RELU_MASK would pack
//        from the unfused int8 layers' outputs (bit i of the flattened NHWC
//        tensor). A train step whose backward crosses the frozen block takes
//        them: its input gradients need nothing else of the interior.
// options: "depthwise_activation", "expand_activation" (0 none, 1 ReLU,
//          2 ReLU6), "depthwise_scale", "depthwise_zero_point" (the
//          quantization of the depthwise output), "expand_scale",
//          "expand_zero_point" (of the expanded map), "expand_padding" (0
//          VALID, 1 SAME), "expand_stride_h", "expand_stride_w" (the expand
//          conv's; 1x1 stride 1 for MobileNetV2's expand; the expand_*
//          options are ignored without an expand conv, but must be valid),
//          "padding", "stride_h", "stride_w" (the depthwise's)
// Persistent: the OpData only (the masks are outputs). The per-channel
// requantization multipliers and shifts (which TFLM's own conv kernels keep
// in persistent arena, 8 bytes per channel) are recomputed at every Eval
// from the filter scales, read in place from the flatbuffer, into scratch:
// the same values, at the cost of one double-precision QuantizeMultiplier
// per channel and invoke. Scratch
// (arena head, shared with other ops): 8 bytes per conv channel, kh rows of
// the expanded map and one pixel, 8 * (2E + Cout) + kh * We * E + E bytes
// (8 * (E + Cout) + E without an expand conv).
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/inverted_residual.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr const char* kOp = "TL_INVERTED_RESIDUAL";
constexpr int kInputTensor = 0;
constexpr int kExpandFilterTensor = 1;
constexpr int kExpandBiasTensor = 2;
constexpr int kDepthwiseFilterTensor = 3;
constexpr int kDepthwiseBiasTensor = 4;
constexpr int kProjectFilterTensor = 5;
constexpr int kProjectBiasTensor = 6;
constexpr int kNumInputs = 7;
constexpr int kOutputTensor = 0;
constexpr int kMaxOutputs = 3;  // output, expand_mask, depthwise_mask
constexpr size_t kDepthwiseActivationIndex = 0;  // "depthwise_activation"
constexpr size_t kDepthwiseScaleIndex = 1;       // "depthwise_scale"
constexpr size_t kDepthwiseZeroPointIndex = 2;   // "depthwise_zero_point"
constexpr size_t kExpandActivationIndex = 3;     // "expand_activation"
constexpr size_t kExpandPaddingIndex = 4;        // "expand_padding"
constexpr size_t kExpandScaleIndex = 5;          // "expand_scale"
constexpr size_t kExpandStrideHIndex = 6;        // "expand_stride_h"
constexpr size_t kExpandStrideWIndex = 7;        // "expand_stride_w"
constexpr size_t kExpandZeroPointIndex = 8;      // "expand_zero_point"
constexpr size_t kPaddingIndex = 9;              // "padding"
constexpr size_t kStrideHIndex = 10;             // "stride_h"
constexpr size_t kStrideWIndex = 11;             // "stride_w"
constexpr size_t kNumOptions = 12;

// What Eval needs to recompute one stage's multipliers.
struct StageScales {
  const float* filter_scales;  // [channels], valid for the model's lifetime
  float input_scale;
  float output_scale;
  int32_t channels;
};

struct OpData {
  bool options_ok;
  int32_t depthwise_activation;
  int32_t expand_activation;
  float depthwise_scale;
  int32_t depthwise_zero_point;
  float expand_scale;
  int32_t expand_zero_point;
  reference::Padding expand_padding;
  int32_t expand_stride_h;
  int32_t expand_stride_w;
  reference::Padding padding;
  int32_t stride_h;
  int32_t stride_w;
  reference::InvertedResidualShape shape;
  reference::Int8Stage expand;
  reference::Int8Stage depthwise;
  reference::Int8Stage project;
  StageScales expand_scales;
  StageScales depthwise_scales;
  StageScales project_scales;
  int32_t quant_words;  // int32 multipliers and shifts at the scratch start
  int scratch_index;
  // Nothing about the masks: which outputs they are and their bounds follow
  // from the options and the output count at Eval (the OpData is persistent
  // in every interpreter that runs the op, masks or not).
};

// Which stages have a mask output when the op has them: one per activated
// stage, expand first.
bool HasExpandMask(const OpData& data) {
  return data.shape.has_expand && data.expand_activation != 0;
}
bool HasDepthwiseMask(const OpData& data) {
  return data.depthwise_activation != 0;
}

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data == nullptr) return nullptr;
  data->options_ok = OptionCount(buffer, length) == kNumOptions;
  if (!data->options_ok) return data;
  data->depthwise_activation =
      OptionAsInt32(buffer, length, kDepthwiseActivationIndex);
  data->depthwise_scale = OptionAsFloat(buffer, length, kDepthwiseScaleIndex);
  data->depthwise_zero_point =
      OptionAsInt32(buffer, length, kDepthwiseZeroPointIndex);
  data->expand_activation =
      OptionAsInt32(buffer, length, kExpandActivationIndex);
  data->expand_scale = OptionAsFloat(buffer, length, kExpandScaleIndex);
  data->expand_zero_point =
      OptionAsInt32(buffer, length, kExpandZeroPointIndex);
  const int32_t expand_padding =
      OptionAsInt32(buffer, length, kExpandPaddingIndex);
  data->expand_padding = expand_padding == 1 ? reference::Padding::kSame
                                             : reference::Padding::kValid;
  data->expand_stride_h = OptionAsInt32(buffer, length, kExpandStrideHIndex);
  data->expand_stride_w = OptionAsInt32(buffer, length, kExpandStrideWIndex);
  const int32_t padding = OptionAsInt32(buffer, length, kPaddingIndex);
  data->padding =
      padding == 1 ? reference::Padding::kSame : reference::Padding::kValid;
  data->stride_h = OptionAsInt32(buffer, length, kStrideHIndex);
  data->stride_w = OptionAsInt32(buffer, length, kStrideWIndex);
  data->options_ok =
      data->depthwise_activation >= 0 && data->depthwise_activation <= 2 &&
      data->expand_activation >= 0 && data->expand_activation <= 2 &&
      (padding == 0 || padding == 1) && data->stride_h > 0 &&
      data->stride_w > 0 && (expand_padding == 0 || expand_padding == 1) &&
      data->expand_stride_h > 0 && data->expand_stride_w > 0 &&
      data->depthwise_zero_point >= -128 &&
      data->depthwise_zero_point <= 127 && data->expand_zero_point >= -128 &&
      data->expand_zero_point <= 127;
  return data;
}

bool IsPerTensorInt8(const TfLiteTensor* t) {
  return t != nullptr && t->type == kTfLiteInt8 && HasRank(t, 4) &&
         t->params.scale > 0.0f;
}

// Checks one conv's int8 filter ([dims...]) and int32 bias ([channels]) and
// records what its multipliers (input_scale * filter_scale[c] / out_scale, in
// double, as TFLM's conv kernels compute them) are computed from.
TfLiteStatus PrepareStage(TfLiteContext* context, const char* what,
                          const TfLiteTensor* filter, const TfLiteTensor* bias,
                          int channel_axis, int32_t channels,
                          float input_scale, int32_t input_zero_point,
                          float output_scale, int32_t output_zero_point,
                          int32_t activation, reference::Int8Stage* stage,
                          StageScales* stage_scales) {
  TL_TFLM_ENSURE(filter != nullptr && filter->type == kTfLiteInt8 &&
                     HasRank(filter, 4) && IsConstantTensor(filter),
                 "%s: %s_filter must be a constant int8 rank-4 tensor", kOp,
                 what);
  TL_TFLM_ENSURE(bias != nullptr && bias->type == kTfLiteInt32 &&
                     HasRank(bias, 1) && bias->dims->data[0] == channels,
                 "%s: %s_bias must be int32 [%d]", kOp, what,
                 static_cast<int>(channels));
  float* scales = nullptr;
  TF_LITE_ENSURE_OK(context, CopyFilterScales(context, kOp, filter,
                                               channel_axis, channels,
                                               &scales));
  *stage_scales = {scales, input_scale, output_scale, channels};
  stage->input_zero_point = input_zero_point;
  stage->output_zero_point = output_zero_point;
  reference::Int8ActivationRange(activation, output_scale, output_zero_point,
                                 &stage->act_min, &stage->act_max);
  return kTfLiteOk;
}

// Checks that a mask output is uint8 [ceil(elements / 8)].
TfLiteStatus CheckMaskOutput(const char* what, const TfLiteTensor* mask,
                             int32_t elements) {
  const int32_t bytes = reference::MaskBytes(elements);
  TL_TFLM_ENSURE(mask != nullptr && mask->type == kTfLiteUInt8 &&
                     HasRank(mask, 1) && mask->dims->data[0] == bytes,
                 "%s: %s must be uint8 [%d] (the 1-bit mask of %d values)",
                 kOp, what, static_cast<int>(bytes),
                 static_cast<int>(elements));
  return kTfLiteOk;
}

// Checks the mask outputs, if any: one per activated stage (expand, then
// depthwise), each uint8 [ceil(elements / 8)].
TfLiteStatus CheckMasks(TfLiteContext* context, const OpData* data,
                          TfLiteTensor* const* outputs, int num_outputs) {
  const reference::InvertedResidualShape& shape = data->shape;
  const bool expand_mask = HasExpandMask(*data);
  const bool dw_mask = HasDepthwiseMask(*data);
  const int wanted = 1 + (expand_mask ? 1 : 0) + (dw_mask ? 1 : 0);
  TL_TFLM_ENSURE(num_outputs == 1 || num_outputs == wanted,
                 "%s: expects 1 output, or %d with the masks of the "
                 "activated stages (expand_mask, depthwise_mask), got %d",
                 kOp, wanted, num_outputs);
  if (num_outputs == 1) return kTfLiteOk;
  int next = 1;
  if (expand_mask) {
    TF_LITE_ENSURE_OK(context, CheckMaskOutput(
        "expand_mask", outputs[next],
        shape.batch * shape.expanded_h * shape.expanded_w *
            shape.expanded_c));
    ++next;
  }
  if (dw_mask) {
    TF_LITE_ENSURE_OK(context, CheckMaskOutput(
        "depthwise_mask", outputs[next],
        shape.batch * shape.out_h * shape.out_w * shape.expanded_c));
  }
  return kTfLiteOk;
}

TfLiteStatus Validate(TfLiteContext* context, OpData* data,
                      TfLiteTensor* const* t, TfLiteTensor* const* outputs,
                      int num_outputs) {
  const TfLiteTensor* output = outputs[kOutputTensor];
  TL_TFLM_ENSURE(data->options_ok,
                 "%s: options must be depthwise_activation and "
                 "expand_activation (0 none, 1 relu, 2 relu6), "
                 "depthwise_scale, depthwise_zero_point, expand_scale, "
                 "expand_zero_point (int8), expand_padding, padding (0/1), "
                 "expand_stride_h, expand_stride_w, stride_h, stride_w "
                 "(positive)", kOp);
  const TfLiteTensor* input = t[kInputTensor];
  TL_TFLM_ENSURE(IsPerTensorInt8(input),
                 "%s: input must be int8 NHWC with a per-tensor scale", kOp);
  TL_TFLM_ENSURE(IsPerTensorInt8(output),
                 "%s: output must be int8 NHWC with a per-tensor scale", kOp);
  const bool has_expand = t[kExpandFilterTensor] != nullptr;
  TL_TFLM_ENSURE(has_expand == (t[kExpandBiasTensor] != nullptr),
                 "%s: expand_filter and expand_bias are both present or both "
                 "absent", kOp);
  const int* x = input->dims->data;
  const TfLiteTensor* dw = t[kDepthwiseFilterTensor];
  TL_TFLM_ENSURE(dw != nullptr && HasRank(dw, 4) && dw->dims->data[0] == 1,
                 "%s: depthwise_filter must be [1, kh, kw, E]", kOp);
  const int32_t e_c = dw->dims->data[3];
  if (has_expand) {
    const int* f = t[kExpandFilterTensor]->dims->data;
    TL_TFLM_ENSURE(HasRank(t[kExpandFilterTensor], 4) && f[0] == e_c &&
                       f[1] > 0 && f[2] > 0 && f[3] == x[3],
                   "%s: expand_filter must be [%d, kh, kw, %d] (the depthwise "
                   "channels, the input channels; one group)", kOp,
                   static_cast<int>(e_c), x[3]);
    TL_TFLM_ENSURE(data->expand_scale > 0.0f,
                   "%s: expand_scale must be positive", kOp);
  } else {
    TL_TFLM_ENSURE(e_c == x[3],
                   "%s: without an expand conv the depthwise_filter has the "
                   "input's %d channels, not %d", kOp, x[3],
                   static_cast<int>(e_c));
  }
  TL_TFLM_ENSURE(data->depthwise_scale > 0.0f,
                 "%s: depthwise_scale must be positive", kOp);
  const TfLiteTensor* pf = t[kProjectFilterTensor];
  const int32_t out_c = output->dims->data[3];
  TL_TFLM_ENSURE(pf != nullptr && HasRank(pf, 4) &&
                     pf->dims->data[0] == out_c && pf->dims->data[1] == 1 &&
                     pf->dims->data[2] == 1 && pf->dims->data[3] == e_c,
                 "%s: project_filter must be [%d, 1, 1, %d] (the output "
                 "channels, the depthwise channels)", kOp,
                 static_cast<int>(out_c), static_cast<int>(e_c));

  reference::InvertedResidualShape& s = data->shape;
  s.batch = x[0];
  s.in_h = x[1];
  s.in_w = x[2];
  s.in_c = x[3];
  s.expanded_c = e_c;
  s.out_c = out_c;
  s.filter_h = dw->dims->data[1];
  s.filter_w = dw->dims->data[2];
  s.stride_h = data->stride_h;
  s.stride_w = data->stride_w;
  s.has_expand = has_expand;
  s.expand_filter_h = has_expand ? t[kExpandFilterTensor]->dims->data[1] : 1;
  s.expand_filter_w = has_expand ? t[kExpandFilterTensor]->dims->data[2] : 1;
  s.expand_stride_h = data->expand_stride_h;
  s.expand_stride_w = data->expand_stride_w;
  const bool fits = reference::SetInvertedResidualGeometry(
      data->expand_padding, data->padding, &s);
  TL_TFLM_ENSURE(!has_expand || (s.expanded_h > 0 && s.expanded_w > 0),
                 "%s: the %dx%d expand window (stride %dx%d, %s) does not fit "
                 "the %dx%d input", kOp,
                 static_cast<int>(s.expand_filter_h),
                 static_cast<int>(s.expand_filter_w),
                 static_cast<int>(s.expand_stride_h),
                 static_cast<int>(s.expand_stride_w),
                 data->expand_padding == reference::Padding::kSame ? "SAME"
                                                                   : "VALID",
                 x[1], x[2]);
  const int* o = output->dims->data;
  TL_TFLM_ENSURE(fits && o[0] == s.batch && o[1] == s.out_h &&
                     o[2] == s.out_w,
                 "%s: output is %dx%dx%dx%d but the block's output is "
                 "%dx%dx%dx%d", kOp, o[0], o[1], o[2], o[3], x[0],
                 static_cast<int>(s.out_h), static_cast<int>(s.out_w),
                 static_cast<int>(out_c));

  float dw_in_scale = input->params.scale;
  int32_t dw_in_zero_point = input->params.zero_point;
  if (has_expand) {
    TF_LITE_ENSURE_OK(
        context,
        PrepareStage(context, "expand", t[kExpandFilterTensor],
                     t[kExpandBiasTensor], 0, e_c, input->params.scale,
                     input->params.zero_point, data->expand_scale,
                     data->expand_zero_point, data->expand_activation,
                     &data->expand, &data->expand_scales));
    dw_in_scale = data->expand_scale;
    dw_in_zero_point = data->expand_zero_point;
  }
  TF_LITE_ENSURE_OK(
      context,
      PrepareStage(context, "depthwise", dw, t[kDepthwiseBiasTensor], 3, e_c,
                   dw_in_scale, dw_in_zero_point, data->depthwise_scale,
                   data->depthwise_zero_point, data->depthwise_activation,
                   &data->depthwise, &data->depthwise_scales));
  TF_LITE_ENSURE_OK(
      context,
      PrepareStage(context, "project", pf, t[kProjectBiasTensor], 0, out_c,
                   data->depthwise_scale, data->depthwise_zero_point,
                   output->params.scale, output->params.zero_point,
                   /*activation=*/0, &data->project, &data->project_scales));
  TF_LITE_ENSURE_OK(context, CheckMasks(context, data, outputs, num_outputs));
  data->quant_words =
      2 * ((has_expand ? e_c : 0) + e_c + out_c);
  const size_t scratch_bytes =
      sizeof(int32_t) * static_cast<size_t>(data->quant_words) +
      reference::InvertedResidualScratchBytes(s);
  return context->RequestScratchBufferInArena(context, scratch_bytes,
                                              &data->scratch_index);
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  TL_TFLM_ENSURE(node->inputs->size == kNumInputs &&
                     node->outputs->size >= 1 &&
                     node->outputs->size <= kMaxOutputs,
                 "%s: expects 7 inputs (input, expand_filter, expand_bias, "
                 "depthwise_filter, depthwise_bias, project_filter, "
                 "project_bias; the expand pair -1 when absent) and 1 to 3 "
                 "outputs (output, [expand_mask], [depthwise_mask]), got %d "
                 "and %d", kOp, node->inputs->size, node->outputs->size);
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", kOp);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* t[kNumInputs];
  for (int i = 0; i < kNumInputs; ++i) {
    t[i] = mc->AllocateTempInputTensor(node, i);
  }
  const int num_outputs = node->outputs->size;
  TfLiteTensor* outputs[kMaxOutputs] = {nullptr, nullptr, nullptr};
  for (int i = 0; i < num_outputs; ++i) {
    outputs[i] = mc->AllocateTempOutputTensor(node, i);
  }
  const TfLiteStatus status = Validate(context, data, t, outputs, num_outputs);
  for (int i = 0; i < kNumInputs; ++i) {
    if (t[i] != nullptr) mc->DeallocateTempTfLiteTensor(t[i]);
  }
  for (int i = 0; i < num_outputs; ++i) {
    if (outputs[i] != nullptr) mc->DeallocateTempTfLiteTensor(outputs[i]);
  }
  return status;
}

const int8_t* FilterData(TfLiteContext* context, TfLiteNode* node, int index) {
  return tflite::micro::GetTensorData<int8_t>(
      tflite::micro::GetEvalInput(context, node, index));
}

const int32_t* BiasData(TfLiteContext* context, TfLiteNode* node, int index) {
  return tflite::micro::GetTensorData<int32_t>(
      tflite::micro::GetEvalInput(context, node, index));
}

uint8_t* MaskData(TfLiteContext* context, TfLiteNode* node, int index) {
  return tflite::micro::GetTensorData<uint8_t>(
      tflite::micro::GetEvalOutput(context, node, index));
}

// The masks to write (none when the op has only its output), with the
// bounds TL_RELU_MASK uses: two float divisions per invoke.
reference::InvertedResidualMasks EvalMasks(TfLiteContext* context,
                                           TfLiteNode* node,
                                           const OpData& data) {
  reference::InvertedResidualMasks masks = {};
  if (node->outputs->size == 1) return masks;
  int next = 1;
  if (HasExpandMask(data)) {
    masks.expand = MaskData(context, node, next++);
    reference::Int8MaskBounds(data.expand_activation == 2, data.expand_scale,
                              data.expand_zero_point, &masks.expand_lower,
                              &masks.expand_upper);
  }
  if (HasDepthwiseMask(data)) {
    masks.depthwise = MaskData(context, node, next);
    reference::Int8MaskBounds(data.depthwise_activation == 2,
                              data.depthwise_scale, data.depthwise_zero_point,
                              &masks.depthwise_lower, &masks.depthwise_upper);
  }
  return masks;
}

// Computes one stage's multipliers and shifts at *next and advances it.
void SetMultipliers(const StageScales& scales, int32_t** next,
                    reference::Int8Stage* stage) {
  int32_t* multipliers = *next;
  int32_t* shifts = multipliers + scales.channels;
  reference::StageMultipliers(scales.input_scale, scales.filter_scales,
                              scales.output_scale, scales.channels,
                              multipliers, shifts);
  stage->multiplier = multipliers;
  stage->shift = shifts;
  *next = shifts + scales.channels;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  reference::Int8Stage expand = data->expand;
  if (data->shape.has_expand) {
    expand.filter = FilterData(context, node, kExpandFilterTensor);
    expand.bias = BiasData(context, node, kExpandBiasTensor);
  }
  reference::Int8Stage depthwise = data->depthwise;
  depthwise.filter = FilterData(context, node, kDepthwiseFilterTensor);
  depthwise.bias = BiasData(context, node, kDepthwiseBiasTensor);
  reference::Int8Stage project = data->project;
  project.filter = FilterData(context, node, kProjectFilterTensor);
  project.bias = BiasData(context, node, kProjectBiasTensor);
  auto* quant = static_cast<int32_t*>(
      context->GetScratchBuffer(context, data->scratch_index));
  TL_TFLM_ENSURE(quant != nullptr, "%s: no scratch buffer", kOp);
  int32_t* next = quant;
  if (data->shape.has_expand) {
    SetMultipliers(data->expand_scales, &next, &expand);
  }
  SetMultipliers(data->depthwise_scales, &next, &depthwise);
  SetMultipliers(data->project_scales, &next, &project);
  int8_t* scratch = reinterpret_cast<int8_t*>(quant + data->quant_words);
  const reference::InvertedResidualMasks masks =
      EvalMasks(context, node, *data);
  reference::InvertedResidual(
      data->shape, expand, depthwise, project,
      tflite::micro::GetTensorData<int8_t>(
          tflite::micro::GetEvalInput(context, node, kInputTensor)),
      tflite::micro::GetTensorData<int8_t>(
          tflite::micro::GetEvalOutput(context, node, kOutputTensor)),
      scratch, &masks);
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_TL_INVERTED_RESIDUAL() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Eval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
