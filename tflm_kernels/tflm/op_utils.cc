#include "tflm_kernels/tflm/op_utils.h"

#include "tensorflow/lite/micro/flatbuffer_utils.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/int8_stage.h"
#include "tflm_kernels/reference/requantize.h"

namespace tflite_tl {
namespace tflm {

namespace {
// Alphabetical positions of the ConvOptions keys in the flexbuffer map.
constexpr size_t kPaddingIndex = 0;   // "padding"
constexpr size_t kStrideHIndex = 1;   // "stride_h"
constexpr size_t kStrideWIndex = 2;   // "stride_w"
constexpr size_t kNumConvOptions = 3;
}  // namespace

size_t OptionCount(const char* buffer, size_t length) {
  if (buffer == nullptr || length == 0) return 0;
  tflite::FlexbufferWrapper options(reinterpret_cast<const uint8_t*>(buffer),
                                    length);
  return options.size();
}

float OptionAsFloat(const char* buffer, size_t length, size_t index) {
  tflite::FlexbufferWrapper options(reinterpret_cast<const uint8_t*>(buffer),
                                    length);
  return options.ElementAsFloat(index);
}

bool OptionAsBool(const char* buffer, size_t length, size_t index) {
  tflite::FlexbufferWrapper options(reinterpret_cast<const uint8_t*>(buffer),
                                    length);
  return options.ElementAsBool(index);
}

bool ParseConvOptions(const char* buffer, size_t length, ConvOptions* out) {
  if (OptionCount(buffer, length) != kNumConvOptions) return false;
  tflite::FlexbufferWrapper options(reinterpret_cast<const uint8_t*>(buffer),
                                    length);
  const int32_t padding = options.ElementAsInt32(kPaddingIndex);
  out->padding = padding == 1 ? reference::Padding::kSame
                              : reference::Padding::kValid;
  out->stride_h = options.ElementAsInt32(kStrideHIndex);
  out->stride_w = options.ElementAsInt32(kStrideWIndex);
  return (padding == 0 || padding == 1) && out->stride_h > 0 &&
         out->stride_w > 0;
}

int64_t ElementCount(const TfLiteIntArray* dims) {
  int64_t count = 1;
  for (int i = 0; i < dims->size; ++i) count *= dims->data[i];
  return count;
}

const char* TypeName(TfLiteType type) {
  switch (type) {
    case kTfLiteFloat32:
      return "float32";
    case kTfLiteInt8:
      return "int8";
    case kTfLiteInt32:
      return "int32";
    default:
      return TfLiteTypeGetName(type);
  }
}

TfLiteStatus CheckConvOutput(const char* op_name, const ConvOptions& options,
                             const TfLiteTensor* input, int32_t filter_h,
                             int32_t filter_w, int32_t out_c,
                             const TfLiteTensor* output,
                             const TfLiteTensor* bias, TfLiteType type) {
  TL_TFLM_ENSURE(output != nullptr && output->type == type &&
                     HasRank(output, 4),
                 "%s: output must be %s NHWC", op_name, TypeName(type));
  if (bias != nullptr) {
    const bool int8 = type == kTfLiteInt8;
    TL_TFLM_ENSURE((bias->type == kTfLiteFloat32 ||
                    (int8 && bias->type == kTfLiteInt32)) &&
                       HasRank(bias, 1) && bias->dims->data[0] == out_c,
                   "%s: bias must be %s [%d]", op_name,
                   int8 ? "int32 or float32" : "float32",
                   static_cast<int>(out_c));
  }
  const int* x = input->dims->data;
  const int32_t out_h =
      reference::ConvOutputSize(options.padding, x[1], filter_h, options.stride_h);
  const int32_t out_w =
      reference::ConvOutputSize(options.padding, x[2], filter_w, options.stride_w);
  const int* o = output->dims->data;
  TL_TFLM_ENSURE(o[0] == x[0] && o[1] == out_h && o[2] == out_w && o[3] == out_c,
                 "%s: output is %dx%dx%dx%d but the convolution output is "
                 "%dx%dx%dx%d", op_name, o[0], o[1], o[2], o[3], x[0],
                 static_cast<int>(out_h), static_cast<int>(out_w),
                 static_cast<int>(out_c));
  return kTfLiteOk;
}

TfLiteStatus ReadInt8ConvQuantization(TfLiteContext* context,
                                      const char* op_name,
                                      const TfLiteTensor* input,
                                      const TfLiteTensor* filter,
                                      int filter_channel_axis, int32_t out_c,
                                      const TfLiteTensor* output,
                                      int32_t activation,
                                      Int8ConvQuantization* q) {
  TL_TFLM_ENSURE(input->params.scale > 0.0f && output->params.scale > 0.0f,
                 "%s: int8 input and output need positive quantization "
                 "scales", op_name);
  q->input_scale = input->params.scale;
  q->input_zero_point = input->params.zero_point;
  q->output_scale = output->params.scale;
  q->output_zero_point = output->params.zero_point;
  float* scales = nullptr;
  TF_LITE_ENSURE_OK(context, CopyFilterScales(context, op_name, filter,
                                              filter_channel_axis, out_c,
                                              &scales));
  q->filter_scales = scales;
  reference::Int8ActivationRange(activation, q->output_scale,
                                 q->output_zero_point, &q->act_min,
                                 &q->act_max);
  reference::Int8MaskBounds(activation == 2, q->output_scale,
                            q->output_zero_point, &q->mask_lower,
                            &q->mask_upper);
  return kTfLiteOk;
}

int32_t Int8ConvScratchInts(const TfLiteTensor* bias, int32_t out_c) {
  return (bias != nullptr && bias->type == kTfLiteFloat32 ? 3 : 2) * out_c;
}

reference::Int8Stage Int8ConvStage(TfLiteContext* context, TfLiteNode* node,
                                   const Int8ConvQuantization& q,
                                   int scratch_index, int32_t out_c) {
  auto* quant =
      static_cast<int32_t*>(context->GetScratchBuffer(context, scratch_index));
  reference::StageMultipliers(q.input_scale, q.filter_scales, q.output_scale,
                              out_c, quant, quant + out_c);
  const TfLiteEvalTensor* bias_tensor =
      node->inputs->size > 2 ? tflite::micro::GetEvalInput(context, node, 2)
                             : nullptr;
  const int32_t* bias = nullptr;
  if (bias_tensor != nullptr && bias_tensor->type == kTfLiteFloat32) {
    int32_t* bias_q = quant + 2 * out_c;
    reference::QuantizeBiases(
        tflite::micro::GetTensorData<float>(bias_tensor), q.input_scale,
        q.filter_scales, out_c, bias_q);
    bias = bias_q;
  } else {
    bias = tflite::micro::GetOptionalTensorData<int32_t>(bias_tensor);
  }
  return {tflite::micro::GetTensorData<int8_t>(
              tflite::micro::GetEvalInput(context, node, 1)),
          bias, quant, quant + out_c, q.input_zero_point, q.output_zero_point,
          q.act_min, q.act_max};
}

TfLiteStatus PrepareConvGeometry(const char* op_name, const ConvOptions& o,
                                 int32_t batch, int32_t in_h, int32_t in_w,
                                 int32_t in_c, int32_t out_c, int32_t filter_h,
                                 int32_t filter_w,
                                 const TfLiteTensor* grad_output,
                                 reference::ConvGeometry* g, int32_t groups) {
  int32_t d[4];
  TL_TFLM_ENSURE(Dims4(grad_output, d),
                 "%s: grad_output must be NHWC (or [N, C] for a fully "
                 "connected layer)", op_name);
  TL_TFLM_ENSURE(
      reference::MakeConvGeometry(batch, in_h, in_w, in_c, out_c, filter_h,
                                  filter_w, o.stride_h, o.stride_w, o.padding,
                                  g, groups),
      "%s: empty or inconsistent convolution (input %dx%dx%dx%d, filter "
      "%dx%d, %d output channels, %d groups)",
      op_name, static_cast<int>(batch), static_cast<int>(in_h),
      static_cast<int>(in_w), static_cast<int>(in_c),
      static_cast<int>(filter_h), static_cast<int>(filter_w),
      static_cast<int>(out_c), static_cast<int>(groups));
  TL_TFLM_ENSURE(d[0] == batch && d[1] == g->out_h && d[2] == g->out_w &&
                     d[3] == out_c,
                 "%s: grad_output is %dx%dx%dx%d but the convolution output "
                 "is %dx%dx%dx%d",
                 op_name, static_cast<int>(d[0]), static_cast<int>(d[1]),
                 static_cast<int>(d[2]), static_cast<int>(d[3]),
                 static_cast<int>(batch),
                 static_cast<int>(g->out_h), static_cast<int>(g->out_w),
                 static_cast<int>(out_c));
  return kTfLiteOk;
}

namespace {

// The per-channel scales of ``q`` for the op's lifetime. TFLM's tensors point
// their scale arrays straight into the model flatbuffer (on little-endian
// targets, TfLiteFloatArray has the flatbuffer vector's layout; see TFLM's
// FlatBufferVectorToTfLiteTypeArray), which outlives every op: one scale per
// channel is used in place, with no copy in the arena. A single per-tensor
// scale, or a big-endian target, gets a persistent copy of `channels` floats.
TfLiteStatus ScalesOf(TfLiteContext* context, const char* op_name,
                      const TfLiteAffineQuantization* q, int32_t channels,
                      float** scales) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (q->scale->size == channels) {
    *scales = const_cast<float*>(q->scale->data);
    return kTfLiteOk;
  }
#endif
  *scales = static_cast<float*>(
      context->AllocatePersistentBuffer(context, sizeof(float) * channels));
  TL_TFLM_ENSURE(*scales != nullptr, "%s: arena too small for %d scales",
                 op_name, static_cast<int>(channels));
  for (int32_t c = 0; c < channels; ++c) {
    (*scales)[c] = q->scale->data[q->scale->size == 1 ? 0 : c];
  }
  return kTfLiteOk;
}

}  // namespace

TfLiteStatus CopyFilterScales(TfLiteContext* context, const char* op_name,
                              const TfLiteTensor* filter, int channel_axis,
                              int32_t channels, float** scales) {
  TL_TFLM_ENSURE(filter->quantization.type == kTfLiteAffineQuantization &&
                     filter->quantization.params != nullptr,
                 "%s: an int8 filter needs affine (per-channel) quantization",
                 op_name);
  const auto* q = static_cast<const TfLiteAffineQuantization*>(
      filter->quantization.params);
  const int num_scales = q->scale->size;
  TL_TFLM_ENSURE(num_scales == 1 || q->quantized_dimension == channel_axis,
                 "%s: filter is quantized along axis %d, expected %d", op_name,
                 static_cast<int>(q->quantized_dimension), channel_axis);
  TL_TFLM_ENSURE(num_scales == 1 || num_scales == channels,
                 "%s: filter has %d scales, expected 1 or %d", op_name,
                 num_scales, static_cast<int>(channels));
  for (int i = 0; q->zero_point != nullptr && i < q->zero_point->size; ++i) {
    TL_TFLM_ENSURE(q->zero_point->data[i] == 0,
                   "%s: int8 filter zero points must be 0 (symmetric), got %d",
                   op_name, q->zero_point->data[i]);
  }
  return ScalesOf(context, op_name, q, channels, scales);
}

TfLiteStatus ReadInputQuantization(const char* op_name,
                                   const TfLiteTensor* input,
                                   reference::ActivationQuantization* quant) {
  *quant = reference::kNoQuantization;
  if (input->type != kTfLiteInt8) return kTfLiteOk;
  TL_TFLM_ENSURE(input->params.scale > 0.0f,
                 "%s: an int8 input needs a positive quantization scale",
                 op_name);
  quant->scale = input->params.scale;
  quant->zero_point = input->params.zero_point;
  return kTfLiteOk;
}

int32_t OptionAsInt32(const char* buffer, size_t length, size_t index) {
  tflite::FlexbufferWrapper options(reinterpret_cast<const uint8_t*>(buffer),
                                    length);
  return options.ElementAsInt32(index);
}

bool Dims4(const TfLiteTensor* t, int32_t dims[4]) {
  if (t == nullptr || t->dims == nullptr) return false;
  const int* d = t->dims->data;
  if (t->dims->size == 4) {
    for (int i = 0; i < 4; ++i) dims[i] = d[i];
    return true;
  }
  if (t->dims->size == 2) {
    dims[0] = d[0];
    dims[1] = 1;
    dims[2] = 1;
    dims[3] = d[1];
    return true;
  }
  return false;
}

TfLiteStatus CheckMask(const char* op_name, const TfLiteTensor* mask,
                       int64_t elements) {
  if (mask == nullptr) return kTfLiteOk;
  const int64_t bytes = (elements + 7) / 8;
  TL_TFLM_ENSURE(mask->type == kTfLiteUInt8 && HasRank(mask, 1) &&
                     mask->dims->data[0] == bytes,
                 "%s: mask must be uint8 [%d] (1 bit per grad_output element, "
                 "%d elements)", op_name, static_cast<int>(bytes),
                 static_cast<int>(elements));
  return kTfLiteOk;
}

TfLiteStatus CheckVariable(const char* op_name, const char* what,
                           const TfLiteTensor* t, TfLiteType type) {
  TL_TFLM_ENSURE(t != nullptr && t->type == type, "%s: %s must be %s, got %s",
                 op_name, what, TfLiteTypeGetName(type),
                 t == nullptr ? "none" : TfLiteTypeGetName(t->type));
  TL_TFLM_ENSURE(t->is_variable,
                 "%s: %s is updated in place and must be a variable tensor",
                 op_name, what);
  return kTfLiteOk;
}

TfLiteStatus CopyChannelScales(TfLiteContext* context, const char* op_name,
                               const char* what, const TfLiteTensor* t,
                               int channel_axis, int32_t channels,
                               float** scales) {
  TL_TFLM_ENSURE(t->quantization.type == kTfLiteAffineQuantization &&
                     t->quantization.params != nullptr,
                 "%s: %s needs affine per-channel quantization", op_name, what);
  const auto* q =
      static_cast<const TfLiteAffineQuantization*>(t->quantization.params);
  const int num_scales = q->scale->size;
  TL_TFLM_ENSURE(num_scales == 1 || num_scales == channels,
                 "%s: %s has %d scales, expected 1 or %d", op_name, what,
                 num_scales, static_cast<int>(channels));
  TL_TFLM_ENSURE(num_scales == 1 || q->quantized_dimension == channel_axis,
                 "%s: %s is quantized along axis %d, expected %d", op_name,
                 what, static_cast<int>(q->quantized_dimension), channel_axis);
  for (int i = 0; q->zero_point != nullptr && i < q->zero_point->size; ++i) {
    TL_TFLM_ENSURE(q->zero_point->data[i] == 0,
                   "%s: %s zero points must be 0 (symmetric), got %d", op_name,
                   what, q->zero_point->data[i]);
  }
  for (int i = 0; i < num_scales; ++i) {
    TL_TFLM_ENSURE(q->scale->data[i] > 0.0f,
                   "%s: %s scale %d is not positive", op_name, what, i);
  }
  return ScalesOf(context, op_name, q, channels, scales);
}

}  // namespace tflm
}  // namespace tflite_tl
