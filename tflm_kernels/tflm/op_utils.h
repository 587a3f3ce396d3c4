// Helpers shared by the TL_* TFLite Micro adapters: error reporting, custom
// option parsing and conv geometry validation. Prepare-time only.
#ifndef TFLM_KERNELS_TFLM_OP_UTILS_H_
#define TFLM_KERNELS_TFLM_OP_UTILS_H_

#include <stddef.h>
#include <stdint.h>

#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tflm_kernels/reference/activation_quantization.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/int8_stage.h"

// Reports with MicroPrintf and fails the op when `cond` is false. The message
// names the op and what is expected, like TFLM's own kernels.
#define TL_TFLM_ENSURE(cond, ...) \
  do {                            \
    if (!(cond)) {                \
      MicroPrintf(__VA_ARGS__);   \
      return kTfLiteError;        \
    }                             \
  } while (0)

namespace tflite_tl {
namespace tflm {

// Custom options of the four convolution gradient ops. In the flexbuffer map
// the keys are, alphabetically: "padding" (0 VALID, 1 SAME), "stride_h",
// "stride_w".
struct ConvOptions {
  reference::Padding padding;
  int32_t stride_h;
  int32_t stride_w;
};

// Parses ConvOptions; returns false if the buffer is missing or malformed.
bool ParseConvOptions(const char* buffer, size_t length, ConvOptions* options);

// Reads one float/bool option by its alphabetical index in the options map.
float OptionAsFloat(const char* buffer, size_t length, size_t index);
bool OptionAsBool(const char* buffer, size_t length, size_t index);
size_t OptionCount(const char* buffer, size_t length);

int64_t ElementCount(const TfLiteIntArray* dims);

inline bool HasRank(const TfLiteTensor* t, int rank) {
  return t != nullptr && t->dims != nullptr && t->dims->size == rank;
}

// Builds the geometry of a convolution (grouped if groups > 1) from its sizes
// and checks that grad_output ([batch, out_h, out_w, out_c]) is its output.
TfLiteStatus PrepareConvGeometry(const char* op_name, const ConvOptions& options,
                                 int32_t batch, int32_t in_h, int32_t in_w,
                                 int32_t in_c, int32_t out_c, int32_t filter_h,
                                 int32_t filter_w,
                                 const TfLiteTensor* grad_output,
                                 reference::ConvGeometry* geometry,
                                 int32_t groups = 1);

// "float32", "int8", "int32" (as the ops' messages spell them), else TFLite's
// name of the type.
const char* TypeName(TfLiteType type);

// The forward convolutions' output checks (TL_CONV, TL_DEPTHWISE_CONV):
// `output` is NHWC of `type` (float32, or int8 for an int8 graph), `bias`
// (may be null) [out_c] float32 (with int8: int32, or the float32 master of
// a trained bias, quantized per invoke by Int8ConvStage), and the output's
// shape is the convolution's of the NHWC `input` with a filter_h x filter_w
// window.
TfLiteStatus CheckConvOutput(const char* op_name, const ConvOptions& options,
                             const TfLiteTensor* input, int32_t filter_h,
                             int32_t filter_w, int32_t out_c,
                             const TfLiteTensor* output,
                             const TfLiteTensor* bias,
                             TfLiteType type = kTfLiteFloat32);

// An int8 forward convolution's quantization (TL_CONV, TL_DEPTHWISE_CONV on
// int8 tensors): the per-tensor scales and zero points of input and output
// (scales positive), the filter's per-channel scales (CopyFilterScales
// along `filter_channel_axis`), the int8 clamp of `activation` (0 none, 1
// ReLU, 2 ReLU6) and the bounds of its mask (Int8MaskBounds).
struct Int8ConvQuantization {
  float input_scale, output_scale;
  int32_t input_zero_point, output_zero_point;
  const float* filter_scales;
  int32_t act_min, act_max;
  int32_t mask_lower, mask_upper;
};
TfLiteStatus ReadInt8ConvQuantization(TfLiteContext* context,
                                      const char* op_name,
                                      const TfLiteTensor* input,
                                      const TfLiteTensor* filter,
                                      int filter_channel_axis, int32_t out_c,
                                      const TfLiteTensor* output,
                                      int32_t activation,
                                      Int8ConvQuantization* q);

// The int32 scratch an invoke of such an op needs (requested at Prepare):
// multipliers and shifts, 2 * out_c, and out_c more when `bias` is the
// float32 master of a trained bias, which each invoke quantizes
// (requantize.h QuantizeBiases), so the graph keeps no int32 copy of it
// between steps.
int32_t Int8ConvScratchInts(const TfLiteTensor* bias, int32_t out_c);

// The int8 stage of one invoke of such an op: its requantization
// multipliers and shifts computed from `q` into the op's scratch buffer,
// the filter and the optional bias (inputs 1 and 2) read from the node, a
// float bias quantized into the scratch's last out_c ints.
reference::Int8Stage Int8ConvStage(TfLiteContext* context, TfLiteNode* node,
                                   const Int8ConvQuantization& q,
                                   int scratch_index, int32_t out_c);

// The per-output-channel scales of a symmetric int8 filter (TFLite affine
// quantization along `channel_axis`, zero points 0), valid for the op's
// lifetime: read in place from the model flatbuffer (no arena) when there is
// one scale per channel; a single per-tensor scale is broadcast into a
// persistent buffer of `channels` floats.
TfLiteStatus CopyFilterScales(TfLiteContext* context, const char* op_name,
                              const TfLiteTensor* filter, int channel_axis,
                              int32_t channels, float** scales);

// The identity for a float input; the tensor's per-tensor scale and zero
// point for an int8 input (a saved activation of a quantized forward pass).
TfLiteStatus ReadInputQuantization(const char* op_name,
                                   const TfLiteTensor* input,
                                   reference::ActivationQuantization* quant);

// Reads one int option by its alphabetical index in the options map.
int32_t OptionAsInt32(const char* buffer, size_t length, size_t index);

// The 4-D view of an NHWC activation or OHWI filter: a rank-4 shape as is,
// and the FULLY_CONNECTED forms [N, C] / [Co, Ci] as [N, 1, 1, C] /
// [Co, 1, 1, Ci]. False (dims untouched) for a missing tensor or any other
// rank.
bool Dims4(const TfLiteTensor* t, int32_t dims[4]);

// Checks that an optional mask input (null: absent) is uint8
// [ceil(elements / 8)], the packed 1-bit mask of `elements` gradients.
TfLiteStatus CheckMask(const char* op_name, const TfLiteTensor* mask,
                       int64_t elements);

// Checks that a parameter updated in place is present, of `type` and a
// variable tensor.
TfLiteStatus CheckVariable(const char* op_name, const char* what,
                           const TfLiteTensor* t, TfLiteType type);

// Like CopyFilterScales for any symmetric per-channel quantized tensor
// (`what` names it in messages): `channels` scales along `channel_axis`
// (or one broadcast per-tensor scale), all positive, zero points 0.
TfLiteStatus CopyChannelScales(TfLiteContext* context, const char* op_name,
                               const char* what, const TfLiteTensor* t,
                               int channel_axis, int32_t channels,
                               float** scales);

// True for a constant tensor (its data is known at Prepare).
inline bool IsConstantTensor(const TfLiteTensor* t) {
  return t != nullptr && t->allocation_type == kTfLiteMmapRo &&
         t->data.raw != nullptr;
}

}  // namespace tflm
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_TFLM_OP_UTILS_H_
