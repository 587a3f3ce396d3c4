#include "tflm_kernels/tflm/parameter_update.h"

#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/conv_input_grad.h"
#include "tflm_kernels/reference/depthwise_input_grad.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr int kGradOutputTensor = 0;
constexpr int kMaskTensor = 1;
constexpr int kInputTensor = 2;
constexpr int kChannelsTensor = 3;
constexpr int kFilterTensor = 4;
constexpr int kFilterQTensor = 5;
constexpr int kBiasTensor = 6;
constexpr int kBiasQTensor = 7;
constexpr int kNumInputs = 8;
// The fused input gradient: input 8 and output 0, both or neither.
constexpr int kInputGradFilterTensor = 8;
constexpr int kNumInputsWithInputGrad = 9;
constexpr int kGradInputTensor = 0;

bool SameGeometry(const reference::ConvGeometry& a,
                  const reference::ConvGeometry& b) {
  return a.batch == b.batch && a.in_h == b.in_h && a.in_w == b.in_w &&
         a.in_c == b.in_c && a.out_h == b.out_h && a.out_w == b.out_w &&
         a.out_c == b.out_c && a.filter_h == b.filter_h &&
         a.filter_w == b.filter_w && a.stride_h == b.stride_h &&
         a.stride_w == b.stride_w && a.pad_top == b.pad_top &&
         a.pad_left == b.pad_left && a.groups == b.groups;
}

// The fused input gradient: grad_input through the forward's filter (input
// 8), whose geometry must be the update's when the filter trains too.
TfLiteStatus ValidateInputGrad(TfLiteContext* context, const char* op,
                               UpdateKind kind, TfLiteTensor* const* in,
                               const TfLiteTensor* grad_input,
                               const int32_t go[4], UpdateOpData* data) {
  const TfLiteTensor* filter = in[kInputGradFilterTensor];
  const bool depthwise = kind == UpdateKind::kDepthwise;
  int32_t f[4], gi[4];
  TL_TFLM_ENSURE(filter != nullptr &&
                     (filter->type == kTfLiteInt8 ||
                      filter->type == kTfLiteFloat32) &&
                     (depthwise ? HasRank(filter, 4) : true) && Dims4(filter, f),
                 depthwise ? "%s: input_grad_filter (input 8) must be the "
                             "forward's int8 or float32 [1, kh, kw, C] filter"
                           : "%s: input_grad_filter (input 8) must be the "
                             "forward's int8 or float32 OHWI filter (or "
                             "[Co, Ci])",
                 op);
  TL_TFLM_ENSURE(grad_input != nullptr && grad_input->type == kTfLiteFloat32 &&
                     Dims4(grad_input, gi),
                 "%s: grad_input must be float32 NHWC (or [N, Ci])", op);
  if (depthwise) {
    TL_TFLM_ENSURE(f[0] == 1 && f[3] == go[3] && gi[3] == go[3],
                   "%s: input_grad_filter is [%d, %d, %d, %d] and grad_input "
                   "has %d channels; expected [1, kh, kw, %d] and %d "
                   "(depth multiplier 1)", op, static_cast<int>(f[0]),
                   static_cast<int>(f[1]), static_cast<int>(f[2]),
                   static_cast<int>(f[3]), static_cast<int>(gi[3]),
                   static_cast<int>(go[3]), static_cast<int>(go[3]));
  } else {
    TL_TFLM_ENSURE(f[0] == go[3] && f[3] > 0 && gi[3] % f[3] == 0,
                   "%s: input_grad_filter is [%d, %d, %d, %d]; expected %d "
                   "output channels and a divisor of grad_input's %d channels",
                   op, static_cast<int>(f[0]), static_cast<int>(f[1]),
                   static_cast<int>(f[2]), static_cast<int>(f[3]),
                   static_cast<int>(go[3]), static_cast<int>(gi[3]));
  }
  reference::ConvGeometry g;
  TF_LITE_ENSURE_OK(context, PrepareConvGeometry(
                                 op, data->conv, gi[0], gi[1], gi[2], gi[3],
                                 go[3], f[1], f[2], in[kGradOutputTensor], &g,
                                 depthwise ? 1 : gi[3] / f[3]));
  if (data->trains_filter) {
    TL_TFLM_ENSURE(SameGeometry(g, data->geometry),
                   "%s: grad_input %dx%dx%dx%d and the saved input describe "
                   "different convolutions", op, static_cast<int>(gi[0]),
                   static_cast<int>(gi[1]), static_cast<int>(gi[2]),
                   static_cast<int>(gi[3]));
  } else {
    data->geometry = g;
  }
  if (filter->type == kTfLiteInt8) {
    return CopyFilterScales(context, op, filter, depthwise ? 3 : 0, go[3],
                            &data->input_grad_scales);
  }
  return kTfLiteOk;
}

// Everything about the trained filter: shapes, the saved input, channels.
TfLiteStatus ValidateFilter(TfLiteContext* context, const char* op,
                            UpdateKind kind, TfLiteTensor* const* in,
                            const int32_t go[4], UpdateOpData* data) {
  const TfLiteTensor* input = in[kInputTensor];
  const TfLiteTensor* channels = in[kChannelsTensor];
  const TfLiteTensor* filter = in[kFilterTensor];
  const TfLiteTensor* filter_q = in[kFilterQTensor];
  const bool depthwise = kind == UpdateKind::kDepthwise;
  TF_LITE_ENSURE_OK(context,
                    CheckVariable(op, "filter", filter, kTfLiteFloat32));
  if (filter_q != nullptr) {
    TF_LITE_ENSURE_OK(context,
                      CheckVariable(op, "filter_q", filter_q, kTfLiteInt8));
  }
  // The forward's full filter: filter_q in an int8 graph, else filter.
  int32_t f[4];
  TL_TFLM_ENSURE(Dims4(filter_q != nullptr ? filter_q : filter, f),
                 depthwise ? "%s: the filter must be [1, kh, kw, C]"
                           : "%s: the filter must be OHWI [Co, kh, kw, Ci / "
                             "groups] (or [Co, Ci])",
                 op);
  const int32_t out_c = go[3];
  if (depthwise) {
    TL_TFLM_ENSURE(f[0] == 1 && f[3] == out_c,
                   "%s: filter is [%d, %d, %d, %d], expected [1, kh, kw, %d] "
                   "(depth multiplier 1)", op, static_cast<int>(f[0]),
                   static_cast<int>(f[1]), static_cast<int>(f[2]),
                   static_cast<int>(f[3]), static_cast<int>(out_c));
  } else {
    TL_TFLM_ENSURE(f[0] == out_c && f[3] > 0,
                   "%s: filter has %d output channels, grad_output %d", op,
                   static_cast<int>(f[0]), static_cast<int>(out_c));
  }
  int32_t x[4];
  TL_TFLM_ENSURE(input != nullptr &&
                     (input->type == kTfLiteFloat32 ||
                      input->type == kTfLiteInt8) && Dims4(input, x),
                 "%s: training the filter needs the saved layer input "
                 "(input 2), float32 or int8 NHWC", op);
  TF_LITE_ENSURE_OK(context, ReadInputQuantization(op, input, &data->quant));
  TL_TFLM_ENSURE(x[0] == go[0], "%s: input batch %d differs from grad_output's %d",
                 op, static_cast<int>(x[0]), static_cast<int>(go[0]));
  int32_t num_listed = -1;
  if (channels != nullptr) {
    TL_TFLM_ENSURE(channels->type == kTfLiteInt32 && HasRank(channels, 1),
                   "%s: channels must be a 1-D int32 tensor", op);
    num_listed = channels->dims->data[0];
  }
  // A saved input holding only the chosen channels has K of them, fewer
  // than the layer input (K == Ci means the full input). Grouped
  // convolutions take the full input (their Ci is then the input's depth).
  const int32_t group_in = depthwise ? out_c : f[3];
  const bool subset = (depthwise || data->channel_axis == 1) &&
                      num_listed >= 0 && x[3] == num_listed &&
                      num_listed < group_in;
  const int32_t in_c = subset ? group_in : x[3];
  TL_TFLM_ENSURE(depthwise ? in_c == out_c : in_c % f[3] == 0,
                 "%s: input has %d channels; expected %s", op,
                 static_cast<int>(x[3]),
                 depthwise ? "C (or K: only the chosen channels)"
                           : "a multiple of the filter's (or K: only the "
                             "chosen channels, channel_axis 1)");
  const int32_t groups = depthwise ? 1 : in_c / f[3];
  TF_LITE_ENSURE_OK(context, PrepareConvGeometry(
                                 op, data->conv, x[0], x[1], x[2], in_c, out_c,
                                 f[1], f[2], in[kGradOutputTensor],
                                 &data->geometry, groups));
  data->input_depth = x[3];
  data->axis_size = data->channel_axis == 1 ? in_c : out_c;
  data->num_channels = num_listed >= 0 ? num_listed : data->axis_size;
  if (IsConstantTensor(channels)) {
    const int32_t bad = reference::FirstChannelOutOfRange(
        channels->data.i32, num_listed, data->axis_size);
    TL_TFLM_ENSURE(bad < 0, "%s: channel %d (position %d) is outside [0, %d)",
                   op, bad < 0 ? 0 : static_cast<int>(channels->data.i32[bad]),
                   static_cast<int>(bad), static_cast<int>(data->axis_size));
  }
  // The float master of the chosen channels, or the full float filter.
  int32_t m[4];
  TL_TFLM_ENSURE(Dims4(filter, m), "%s: filter must be 4-D (or 2-D)", op);
  int32_t want[4] = {f[0], f[1], f[2], f[3]};
  if (filter_q != nullptr) {
    if (depthwise || data->channel_axis == 1) {
      want[3] = data->num_channels;
    } else {
      want[0] = data->num_channels;
    }
  }
  TL_TFLM_ENSURE(m[0] == want[0] && m[1] == want[1] && m[2] == want[2] &&
                     m[3] == want[3],
                 "%s: filter is [%d, %d, %d, %d], expected [%d, %d, %d, %d]%s",
                 op, static_cast<int>(m[0]), static_cast<int>(m[1]),
                 static_cast<int>(m[2]), static_cast<int>(m[3]),
                 static_cast<int>(want[0]), static_cast<int>(want[1]),
                 static_cast<int>(want[2]), static_cast<int>(want[3]),
                 filter_q != nullptr ? " (the float master of the chosen "
                                       "channels of filter_q)"
                                     : "");
  if (filter_q != nullptr) {
    TF_LITE_ENSURE_OK(context, CopyChannelScales(context, op, "filter_q",
                                                 filter_q, depthwise ? 3 : 0,
                                                 out_c, &data->filter_scales));
  }
  return kTfLiteOk;
}

TfLiteStatus Validate(TfLiteContext* context, const char* op, UpdateKind kind,
                      TfLiteTensor* const* in, const TfLiteTensor* grad_input,
                      UpdateOpData* data) {
  TL_TFLM_ENSURE(data->options_ok,
                 kind == UpdateKind::kConv
                     ? "%s: options must be channel_axis (0/1), learning_rate, "
                       "padding (0/1), qas, stride_h, stride_w (positive)"
                     : "%s: options must be learning_rate, padding (0/1), "
                       "qas, stride_h, stride_w (positive)",
                 op);
  const TfLiteTensor* grad_output = in[kGradOutputTensor];
  int32_t go[4];
  TL_TFLM_ENSURE(grad_output != nullptr &&
                     grad_output->type == kTfLiteFloat32 &&
                     Dims4(grad_output, go) && go[3] > 0,
                 "%s: grad_output must be float32 NHWC (or [N, C])", op);
  const int64_t elements = ElementCount(grad_output->dims);
  TL_TFLM_ENSURE(elements <= INT32_MAX, "%s: grad_output too large", op);
  TF_LITE_ENSURE_OK(context, CheckMask(op, in[kMaskTensor], elements));
  data->out_channels = go[3];
  data->rows = static_cast<int32_t>(elements / go[3]);
  data->filter_scales = nullptr;
  data->bias_scales = nullptr;
  data->input_grad_scales = nullptr;
  data->trains_filter = in[kFilterTensor] != nullptr;
  TL_TFLM_ENSURE(in[kFilterQTensor] == nullptr || data->trains_filter,
                 "%s: filter_q (input 5) needs its float master as filter "
                 "(input 4)", op);
  TL_TFLM_ENSURE(in[kBiasQTensor] == nullptr || in[kBiasTensor] != nullptr,
                 "%s: bias_q (input 7) needs its float master as bias "
                 "(input 6)", op);
  TL_TFLM_ENSURE(data->trains_filter || in[kBiasTensor] != nullptr,
                 "%s: nothing to update: give a filter (input 4) or a bias "
                 "(input 6)", op);
  if (data->trains_filter) {
    TF_LITE_ENSURE_OK(context,
                      ValidateFilter(context, op, kind, in, go, data));
  } else {
    TL_TFLM_ENSURE(in[kInputTensor] == nullptr && in[kChannelsTensor] == nullptr,
                   "%s: input and channels only serve a trained filter; a "
                   "bias is updated at every channel", op);
  }
  if (in[kBiasTensor] != nullptr) {
    TF_LITE_ENSURE_OK(context,
                      CheckVariable(op, "bias", in[kBiasTensor], kTfLiteFloat32));
    TL_TFLM_ENSURE(HasRank(in[kBiasTensor], 1) &&
                       in[kBiasTensor]->dims->data[0] == go[3],
                   "%s: bias must be [%d]", op, static_cast<int>(go[3]));
  }
  if (in[kBiasQTensor] != nullptr) {
    TF_LITE_ENSURE_OK(context,
                      CheckVariable(op, "bias_q", in[kBiasQTensor], kTfLiteInt32));
    TL_TFLM_ENSURE(HasRank(in[kBiasQTensor], 1) &&
                       in[kBiasQTensor]->dims->data[0] == go[3],
                   "%s: bias_q must be [%d]", op, static_cast<int>(go[3]));
    TF_LITE_ENSURE_OK(context,
                      CopyChannelScales(context, op, "bias_q", in[kBiasQTensor],
                                        0, go[3], &data->bias_scales));
  }
  if (data->has_input_grad) {
    TF_LITE_ENSURE_OK(context, ValidateInputGrad(context, op, kind, in,
                                                 grad_input, go, data));
  }
  return kTfLiteOk;
}

// grad_input of the fused input gradient, through the step's starting filter.
TfLiteStatus EvalInputGrad(TfLiteContext* context, TfLiteNode* node,
                           const char* op, UpdateKind kind,
                           const UpdateOpData* data, const float* grad_output,
                           const uint8_t* mask) {
  const TfLiteEvalTensor* filter =
      tflite::micro::GetEvalInput(context, node, kInputGradFilterTensor);
  float* grad_input = tflite::micro::GetTensorData<float>(
      tflite::micro::GetEvalOutput(context, node, kGradInputTensor));
  const bool depthwise = kind == UpdateKind::kDepthwise;
  switch (filter->type) {
    case kTfLiteInt8: {
      const int8_t* f = tflite::micro::GetTensorData<int8_t>(filter);
      if (depthwise) {
        reference::DepthwiseInputGrad<int8_t>(data->geometry, grad_output, f,
                                              data->input_grad_scales,
                                              grad_input, mask);
      } else {
        reference::ConvInputGrad<int8_t>(data->geometry, grad_output, f,
                                         data->input_grad_scales, grad_input,
                                         mask);
      }
      return kTfLiteOk;
    }
    case kTfLiteFloat32: {
      const float* f = tflite::micro::GetTensorData<float>(filter);
      if (depthwise) {
        reference::DepthwiseInputGrad<float>(data->geometry, grad_output, f,
                                             nullptr, grad_input, mask);
      } else {
        reference::ConvInputGrad<float>(data->geometry, grad_output, f,
                                        nullptr, grad_input, mask);
      }
      return kTfLiteOk;
    }
    default:
      MicroPrintf("%s: input_grad_filter type %s not supported (int8, "
                  "float32)", op, TfLiteTypeGetName(filter->type));
      return kTfLiteError;
  }
}

}  // namespace

reference::TrainedParameters EvalTrainedParameters(
    TfLiteContext* context, TfLiteNode* node, int filter_index,
    int8_t* filter_q, const float* filter_scales, int bias_index,
    int bias_q_index, const float* bias_scales) {
  const auto mutable_input = [context, node](int index) {
    return index < 0 ? nullptr
                     : tflite::micro::GetMutableEvalInput(context, node, index);
  };
  reference::TrainedParameters p;
  p.filter = tflite::micro::GetOptionalTensorData<float>(
      mutable_input(filter_index));
  p.filter_q = filter_q;
  p.filter_scales = filter_scales;
  p.bias = tflite::micro::GetOptionalTensorData<float>(
      mutable_input(bias_index));
  p.bias_q = tflite::micro::GetOptionalTensorData<int32_t>(
      mutable_input(bias_q_index));
  p.bias_scales = bias_scales;
  return p;
}

TfLiteStatus PrepareUpdate(TfLiteContext* context, TfLiteNode* node,
                           const char* op, UpdateKind kind,
                           UpdateOpData* data) {
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", op);
  TL_TFLM_ENSURE((node->inputs->size == kNumInputs &&
                  node->outputs->size == 0) ||
                     (node->inputs->size == kNumInputsWithInputGrad &&
                      node->outputs->size == 1),
                 "%s: expects %d inputs (absent optional ones as -1) and no "
                 "outputs (variable tensors are updated in place), or %d "
                 "inputs and 1 output (the fused input gradient), got %d and "
                 "%d", op, kNumInputs, kNumInputsWithInputGrad,
                 node->inputs->size, node->outputs->size);
  data->has_input_grad = node->outputs->size == 1;
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* in[kNumInputsWithInputGrad] = {};
  for (int i = 0; i < node->inputs->size; ++i) {
    in[i] = mc->AllocateTempInputTensor(node, i);
  }
  TfLiteTensor* grad_input =
      data->has_input_grad ? mc->AllocateTempOutputTensor(node, kGradInputTensor)
                           : nullptr;
  const TfLiteStatus status = Validate(context, op, kind, in, grad_input, data);
  for (TfLiteTensor* t : in) {
    if (t != nullptr) mc->DeallocateTempTfLiteTensor(t);
  }
  if (grad_input != nullptr) mc->DeallocateTempTfLiteTensor(grad_input);
  return status;
}

TfLiteStatus EvalUpdate(TfLiteContext* context, TfLiteNode* node,
                        const char* op, UpdateKind kind,
                        const UpdateOpData* data) {
  using tflite::micro::GetEvalInput;
  using tflite::micro::GetMutableEvalInput;
  using tflite::micro::GetOptionalTensorData;
  const float* grad_output = tflite::micro::GetTensorData<float>(
      GetEvalInput(context, node, kGradOutputTensor));
  const uint8_t* mask =
      GetOptionalTensorData<uint8_t>(GetEvalInput(context, node, kMaskTensor));
  const reference::TrainedParameters p = EvalTrainedParameters(
      context, node, kFilterTensor,
      GetOptionalTensorData<int8_t>(
          GetMutableEvalInput(context, node, kFilterQTensor)),
      data->filter_scales, kBiasTensor, kBiasQTensor, data->bias_scales);
  if (data->has_input_grad) {
    // Before the update: every gradient of a step uses its starting
    // parameters (input_grad_filter may be the trained filter itself).
    TF_LITE_ENSURE_OK(context, EvalInputGrad(context, node, op, kind, data,
                                             grad_output, mask));
  }
  if (!data->trains_filter) {
    reference::BiasUpdate(grad_output, mask, data->rows, data->out_channels,
                          data->sgd, p);
    return kTfLiteOk;
  }
  const int32_t* channels = GetOptionalTensorData<int32_t>(
      GetEvalInput(context, node, kChannelsTensor));
  const TfLiteEvalTensor* input = GetEvalInput(context, node, kInputTensor);
  const bool depthwise = kind == UpdateKind::kDepthwise;
  bool ok = false;
  switch (input->type) {
    case kTfLiteFloat32: {
      const float* x = tflite::micro::GetTensorData<float>(input);
      ok = depthwise
               ? reference::DepthwiseUpdate<float>(
                     data->geometry, grad_output, mask, x, data->quant,
                     data->input_depth, channels, data->num_channels,
                     data->sgd, p)
               : reference::ConvUpdate<float>(
                     data->geometry, grad_output, mask, x, data->quant,
                     data->input_depth, channels, data->num_channels,
                     data->channel_axis, data->sgd, p);
      break;
    }
    case kTfLiteInt8: {
      const int8_t* x = tflite::micro::GetTensorData<int8_t>(input);
      ok = depthwise
               ? reference::DepthwiseUpdate<int8_t>(
                     data->geometry, grad_output, mask, x, data->quant,
                     data->input_depth, channels, data->num_channels,
                     data->sgd, p)
               : reference::ConvUpdate<int8_t>(
                     data->geometry, grad_output, mask, x, data->quant,
                     data->input_depth, channels, data->num_channels,
                     data->channel_axis, data->sgd, p);
      break;
    }
    default:
      MicroPrintf("%s: input type %s not supported (float32, int8)", op,
                  TfLiteTypeGetName(input->type));
      return kTfLiteError;
  }
  if (!ok) {
    const int32_t bad = reference::FirstChannelOutOfRange(
        channels, data->num_channels, data->axis_size);
    MicroPrintf("%s: channel %d (position %d) is outside [0, %d)", op,
                bad < 0 ? 0 : static_cast<int>(channels[bad]),
                static_cast<int>(bad), static_cast<int>(data->axis_size));
    return kTfLiteError;
  }
  return kTfLiteOk;
}

TfLiteStatus EvalUpdateInputGrad(TfLiteContext* context, TfLiteNode* node,
                                 const char* op, UpdateKind kind,
                                 const UpdateOpData* data) {
  const float* grad_output = tflite::micro::GetTensorData<float>(
      tflite::micro::GetEvalInput(context, node, kGradOutputTensor));
  const uint8_t* mask = tflite::micro::GetOptionalTensorData<uint8_t>(
      tflite::micro::GetEvalInput(context, node, kMaskTensor));
  return EvalInputGrad(context, node, op, kind, data, grad_output, mask);
}

}  // namespace tflm
}  // namespace tflite_tl
