// TL_INVERTED_RESIDUAL_INPUT_GRAD: TFLite Micro adapter of
// reference/inverted_residual_input_grad.h, the input gradient through a
// frozen int8 inverted-residual block (the backward of TL_INVERTED_RESIDUAL)
// streamed by rows: bit-identical to TL_CONV_INPUT_GRAD (project) ->
// TL_DEPTHWISE_INPUT_GRAD (depthwise mask) -> TL_CONV_INPUT_GRAD (expand,
// expand mask) without their two expanded-width float maps.
//
// in:  0 grad_output f32 [N, Ho, Wo, Cout] (the project output's gradient),
//      1 [grad_output_mask] uint8 [ceil(N*Ho*Wo*Cout / 8)] (a downstream
//        activation's mask, applied to grad_output as it is read),
//      2 project_filter int8 [Cout, 1, 1, E] (per-channel, axis 0),
//      3 depthwise_filter int8 [1, kh, kw, E] (per-channel, axis 3),
//      4 [depthwise_mask] uint8 [ceil(N*Ho*Wo*E / 8)],
//      5 [expand_filter] int8 [E, 1, 1, Cin] (per-channel, axis 0; absent
//        for a block without expand conv, then E = Cin),
//      6 [expand_mask] uint8 [ceil(N*H*W*E / 8)] (only with expand_filter)
//      Optional inputs are -1 when absent; trailing ones may be left out.
// out: grad_input f32 [N, H, W, Cin] (the input size is read from this shape:
//      with stride 2 it is not implied by the output size)
// options: "padding" (0 VALID, 1 SAME), "stride_h", "stride_w" (the
//          depthwise's)
// Persistent: the OpData (filter scales are read in place from the
// flatbuffer). Scratch: ceil(kh / stride_h) rows of the depthwise output
// gradient and, with expand, one row of the expanded map's gradient:
// 4 * (ceil(kh / stride_h) * Wo + W) * E bytes (4 * ceil(kh / stride_h) * Wo * E
// without expand).
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/inverted_residual_input_grad.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr const char* kOp = "TL_INVERTED_RESIDUAL_INPUT_GRAD";
constexpr int kGradOutputTensor = 0;
constexpr int kGradOutputMaskTensor = 1;
constexpr int kProjectFilterTensor = 2;
constexpr int kDepthwiseFilterTensor = 3;
constexpr int kDepthwiseMaskTensor = 4;
constexpr int kExpandFilterTensor = 5;
constexpr int kExpandMaskTensor = 6;
constexpr int kMaxInputs = 7;
constexpr int kMinInputs = 4;
constexpr int kGradInputTensor = 0;

struct OpData {
  ConvOptions options;
  bool options_ok;
  reference::InvertedResidualInputGradShape shape;
  float* project_scales;
  float* depthwise_scales;
  float* expand_scales;
  int scratch_index;
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data != nullptr) {
    data->options_ok = ParseConvOptions(buffer, length, &data->options);
    data->project_scales = data->depthwise_scales = data->expand_scales =
        nullptr;
  }
  return data;
}

bool IsInt8Rank4(const TfLiteTensor* t) {
  return t != nullptr && t->type == kTfLiteInt8 && HasRank(t, 4);
}

TfLiteStatus Validate(TfLiteContext* context, OpData* data,
                      TfLiteTensor* const* t, const TfLiteTensor* grad_input) {
  TL_TFLM_ENSURE(data->options_ok, "%s: options must be padding (0/1), "
                 "stride_h, stride_w (positive)", kOp);
  const TfLiteTensor* dy = t[kGradOutputTensor];
  TL_TFLM_ENSURE(dy != nullptr && dy->type == kTfLiteFloat32 && HasRank(dy, 4),
                 "%s: grad_output must be float32 NHWC", kOp);
  TL_TFLM_ENSURE(grad_input != nullptr && grad_input->type == kTfLiteFloat32 &&
                     HasRank(grad_input, 4),
                 "%s: grad_input must be float32 NHWC", kOp);
  const TfLiteTensor* dw = t[kDepthwiseFilterTensor];
  TL_TFLM_ENSURE(IsInt8Rank4(dw) && dw->dims->data[0] == 1,
                 "%s: depthwise_filter must be int8 [1, kh, kw, E]", kOp);
  const int32_t e_c = dw->dims->data[3];
  const int* y = dy->dims->data;
  const int* x = grad_input->dims->data;
  const TfLiteTensor* pf = t[kProjectFilterTensor];
  TL_TFLM_ENSURE(IsInt8Rank4(pf) && pf->dims->data[0] == y[3] &&
                     pf->dims->data[1] == 1 && pf->dims->data[2] == 1 &&
                     pf->dims->data[3] == e_c,
                 "%s: project_filter must be int8 [%d, 1, 1, %d] (grad_output's "
                 "channels, the depthwise channels)", kOp, y[3],
                 static_cast<int>(e_c));
  const TfLiteTensor* ef = t[kExpandFilterTensor];
  const bool has_expand = ef != nullptr;
  if (has_expand) {
    TL_TFLM_ENSURE(IsInt8Rank4(ef) && ef->dims->data[0] == e_c &&
                       ef->dims->data[1] == 1 && ef->dims->data[2] == 1 &&
                       ef->dims->data[3] == x[3],
                   "%s: expand_filter must be int8 [%d, 1, 1, %d] (the "
                   "depthwise channels, grad_input's channels)", kOp,
                   static_cast<int>(e_c), x[3]);
  } else {
    TL_TFLM_ENSURE(x[3] == e_c && t[kExpandMaskTensor] == nullptr,
                   "%s: without expand_filter, grad_input has the depthwise's "
                   "%d channels (got %d) and there is no expand_mask", kOp,
                   static_cast<int>(e_c), x[3]);
  }
  reference::InvertedResidualInputGradShape& shape = data->shape;
  shape.batch = x[0];
  shape.in_h = x[1];
  shape.in_w = x[2];
  shape.in_c = x[3];
  shape.expanded_c = e_c;
  shape.out_c = y[3];
  shape.filter_h = dw->dims->data[1];
  shape.filter_w = dw->dims->data[2];
  shape.stride_h = data->options.stride_h;
  shape.stride_w = data->options.stride_w;
  shape.has_expand = has_expand;
  const reference::Padding padding = data->options.padding;
  shape.out_h = reference::ConvOutputSize(padding, shape.in_h, shape.filter_h, shape.stride_h);
  shape.out_w = reference::ConvOutputSize(padding, shape.in_w, shape.filter_w, shape.stride_w);
  TL_TFLM_ENSURE(shape.out_h > 0 && shape.out_w > 0 && y[0] == shape.batch &&
                     y[1] == shape.out_h && y[2] == shape.out_w,
                 "%s: grad_output is %dx%dx%dx%d but the block's output is "
                 "%dx%dx%dx%d", kOp, y[0], y[1], y[2], y[3], x[0],
                 static_cast<int>(shape.out_h), static_cast<int>(shape.out_w), y[3]);
  shape.pad_top = reference::ConvPaddingBefore(padding, shape.in_h, shape.filter_h,
                                           shape.stride_h, shape.out_h);
  shape.pad_left = reference::ConvPaddingBefore(padding, shape.in_w, shape.filter_w,
                                            shape.stride_w, shape.out_w);
  reference::ChooseInvertedResidualGradOrder(&shape);
  const int64_t out_pixels = static_cast<int64_t>(shape.batch) * shape.out_h * shape.out_w;
  TF_LITE_ENSURE_OK(context, CheckMask(kOp, t[kGradOutputMaskTensor],
                                       out_pixels * shape.out_c));
  TF_LITE_ENSURE_OK(context, CheckMask(kOp, t[kDepthwiseMaskTensor],
                                       out_pixels * e_c));
  TF_LITE_ENSURE_OK(
      context, CheckMask(kOp, t[kExpandMaskTensor],
                         static_cast<int64_t>(shape.batch) * shape.in_h * shape.in_w * e_c));
  TF_LITE_ENSURE_OK(context, CopyFilterScales(context, kOp, pf, 0, shape.out_c,
                                               &data->project_scales));
  TF_LITE_ENSURE_OK(context, CopyFilterScales(context, kOp, dw, 3, e_c,
                                               &data->depthwise_scales));
  if (has_expand) {
    TF_LITE_ENSURE_OK(context, CopyFilterScales(context, kOp, ef, 0, e_c,
                                                 &data->expand_scales));
  }
  const size_t scratch_bytes =
      sizeof(float) *
      static_cast<size_t>(reference::InvertedResidualInputGradScratchFloats(shape));
  return context->RequestScratchBufferInArena(context, scratch_bytes,
                                              &data->scratch_index);
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  TL_TFLM_ENSURE(node->inputs->size >= kMinInputs &&
                     node->inputs->size <= kMaxInputs &&
                     node->outputs->size == 1,
                 "%s: expects 4 to 7 inputs (grad_output, [grad_output_mask], "
                 "project_filter, depthwise_filter, [depthwise_mask], "
                 "[expand_filter], [expand_mask]; absent ones -1) and 1 "
                 "output, got %d and %d", kOp, node->inputs->size,
                 node->outputs->size);
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", kOp);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* t[kMaxInputs] = {};
  for (int i = 0; i < node->inputs->size; ++i) {
    t[i] = mc->AllocateTempInputTensor(node, i);
  }
  TfLiteTensor* grad_input = mc->AllocateTempOutputTensor(node, kGradInputTensor);
  const TfLiteStatus status = Validate(context, data, t, grad_input);
  for (int i = 0; i < kMaxInputs; ++i) {
    if (t[i] != nullptr) mc->DeallocateTempTfLiteTensor(t[i]);
  }
  if (grad_input != nullptr) mc->DeallocateTempTfLiteTensor(grad_input);
  return status;
}

// An optional input's data, null when the tensor is absent or left out.
template <typename T>
const T* OptionalData(TfLiteContext* context, TfLiteNode* node, int index) {
  if (index >= node->inputs->size) return nullptr;
  return tflite::micro::GetOptionalTensorData<T>(
      tflite::micro::GetEvalInput(context, node, index));
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  auto* scratch = static_cast<float*>(
      context->GetScratchBuffer(context, data->scratch_index));
  TL_TFLM_ENSURE(scratch != nullptr, "%s: no scratch buffer", kOp);
  const reference::Int8Filter project = {
      OptionalData<int8_t>(context, node, kProjectFilterTensor),
      data->project_scales};
  const reference::Int8Filter depthwise = {
      OptionalData<int8_t>(context, node, kDepthwiseFilterTensor),
      data->depthwise_scales};
  const reference::Int8Filter expand = {
      OptionalData<int8_t>(context, node, kExpandFilterTensor),
      data->expand_scales};
  const reference::InvertedResidualGradMasks masks = {
      OptionalData<uint8_t>(context, node, kGradOutputMaskTensor),
      OptionalData<uint8_t>(context, node, kDepthwiseMaskTensor),
      OptionalData<uint8_t>(context, node, kExpandMaskTensor)};
  reference::InvertedResidualInputGrad(
      data->shape,
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalInput(context, node, kGradOutputTensor)),
      project, depthwise, expand, masks,
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalOutput(context, node, kGradInputTensor)),
      scratch);
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_TL_INVERTED_RESIDUAL_INPUT_GRAD() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Eval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
