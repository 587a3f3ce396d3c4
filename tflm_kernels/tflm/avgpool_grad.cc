// TL_AVGPOOL_GRAD: TFLite Micro adapter of reference/avgpool_grad.h.
//
// in:  grad_output f32 [N, Ho, Wo, C] ([N, C] for global pooling),
//      [addend] f32 [N, H, W, C] (optional): another gradient of the pool's
//      input, added to the result (a fan-out's sum without an ADD and its
//      third tensor)
// out: grad_input f32 [N, H, W, C] (the input size is read from this shape)
// options: "filter_h", "filter_w", "padding" (0 VALID, 1 SAME), "stride_h",
//          "stride_w", as AVERAGE_POOL_2D's; the count excludes padding as
//          there. GlobalAveragePooling2D: filter = H x W, VALID.
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/avgpool_grad.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr const char* kOp = "TL_AVGPOOL_GRAD";
constexpr size_t kFilterHIndex = 0;  // "filter_h"
constexpr size_t kFilterWIndex = 1;  // "filter_w"
constexpr size_t kPaddingIndex = 2;  // "padding"
constexpr size_t kStrideHIndex = 3;  // "stride_h"
constexpr size_t kStrideWIndex = 4;  // "stride_w"
constexpr size_t kNumOptions = 5;

struct OpData {
  bool options_ok;
  ConvOptions pool;
  int32_t filter_h, filter_w;
  reference::ConvGeometry geometry;
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data == nullptr) return nullptr;
  data->options_ok = OptionCount(buffer, length) == kNumOptions;
  if (!data->options_ok) return data;
  data->filter_h = OptionAsInt32(buffer, length, kFilterHIndex);
  data->filter_w = OptionAsInt32(buffer, length, kFilterWIndex);
  const int32_t padding = OptionAsInt32(buffer, length, kPaddingIndex);
  data->pool.padding =
      padding == 1 ? reference::Padding::kSame : reference::Padding::kValid;
  data->pool.stride_h = OptionAsInt32(buffer, length, kStrideHIndex);
  data->pool.stride_w = OptionAsInt32(buffer, length, kStrideWIndex);
  data->options_ok = (padding == 0 || padding == 1) && data->filter_h > 0 &&
                     data->filter_w > 0 && data->pool.stride_h > 0 &&
                     data->pool.stride_w > 0;
  return data;
}

TfLiteStatus Validate(OpData* data, const TfLiteTensor* grad_output,
                      const TfLiteTensor* grad_input,
                      const TfLiteTensor* addend) {
  TL_TFLM_ENSURE(data->options_ok,
                 "%s: options must be filter_h, filter_w, stride_h, stride_w "
                 "(positive) and padding (0/1)", kOp);
  TL_TFLM_ENSURE(grad_output != nullptr && grad_output->type == kTfLiteFloat32,
                 "%s: grad_output must be float32", kOp);
  int32_t gi[4];
  TL_TFLM_ENSURE(grad_input != nullptr && grad_input->type == kTfLiteFloat32 &&
                     HasRank(grad_input, 4) && Dims4(grad_input, gi),
                 "%s: grad_input must be float32 NHWC", kOp);
  if (addend != nullptr) {
    int32_t a[4];
    TL_TFLM_ENSURE(addend->type == kTfLiteFloat32 && HasRank(addend, 4) &&
                       Dims4(addend, a) && a[0] == gi[0] && a[1] == gi[1] &&
                       a[2] == gi[2] && a[3] == gi[3],
                   "%s: addend (input 1) must be float32 with grad_input's "
                   "shape [%d, %d, %d, %d]", kOp, static_cast<int>(gi[0]),
                   static_cast<int>(gi[1]), static_cast<int>(gi[2]),
                   static_cast<int>(gi[3]));
  }
  // The pool maps C channels to C channels.
  return PrepareConvGeometry(kOp, data->pool, gi[0], gi[1], gi[2], gi[3],
                             gi[3], data->filter_h, data->filter_w,
                             grad_output, &data->geometry);
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  TL_TFLM_ENSURE((node->inputs->size == 1 || node->inputs->size == 2) &&
                     node->outputs->size == 1,
                 "%s: expects 1 or 2 inputs (grad_output[, addend]) and 1 "
                 "output, got %d and %d", kOp, node->inputs->size,
                 node->outputs->size);
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", kOp);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* grad_output = mc->AllocateTempInputTensor(node, 0);
  TfLiteTensor* grad_input = mc->AllocateTempOutputTensor(node, 0);
  TfLiteTensor* addend = node->inputs->size == 2
                             ? mc->AllocateTempInputTensor(node, 1)
                             : nullptr;
  const TfLiteStatus status = Validate(data, grad_output, grad_input, addend);
  for (TfLiteTensor* t : {grad_output, grad_input, addend}) {
    if (t != nullptr) mc->DeallocateTempTfLiteTensor(t);
  }
  return status;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  reference::AveragePoolGrad(
      data->geometry,
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalInput(context, node, 0)),
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalOutput(context, node, 0)),
      node->inputs->size == 2
          ? tflite::micro::GetTensorData<float>(
                tflite::micro::GetEvalInput(context, node, 1))
          : nullptr);
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_TL_AVGPOOL_GRAD() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Eval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
