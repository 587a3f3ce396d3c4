// TL_RESIZE_BILINEAR_GRAD: TFLite Micro adapter of
// reference/resize_bilinear_grad.h, the adjoint of RESIZE_BILINEAR (float).
//
// in:  grad_output f32 [N, Ho, Wo, C] (gradient of the resized tensor)
// out: grad_input f32 [N, H, W, C] (the input size is read from this shape)
// options: "align_corners", "half_pixel_centers" (bools, as RESIZE_BILINEAR's;
//          not both; TF2 / Keras UpSampling2D use half_pixel_centers)
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tflm_kernels/reference/resize_bilinear_grad.h"
#include "tflm_kernels/tflm/op_utils.h"
#include "tflm_kernels/tflm/training_ops.h"

namespace tflite_tl {
namespace tflm {
namespace {

constexpr const char* kOp = "TL_RESIZE_BILINEAR_GRAD";
constexpr size_t kAlignCornersIndex = 0;     // "align_corners"
constexpr size_t kHalfPixelCentersIndex = 1;  // "half_pixel_centers"

struct OpData {
  bool options_ok;
  bool align_corners;
  bool half_pixel_centers;
  int32_t batch, in_h, in_w, channels, out_h, out_w;
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data == nullptr) return nullptr;
  data->options_ok = OptionCount(buffer, length) == 2;
  if (data->options_ok) {
    data->align_corners = OptionAsBool(buffer, length, kAlignCornersIndex);
    data->half_pixel_centers =
        OptionAsBool(buffer, length, kHalfPixelCentersIndex);
  }
  return data;
}

TfLiteStatus Validate(OpData* data, const TfLiteTensor* grad_output,
                      const TfLiteTensor* grad_input) {
  TL_TFLM_ENSURE(data->options_ok,
                 "%s: options must be align_corners and half_pixel_centers "
                 "(bools)", kOp);
  TL_TFLM_ENSURE(!(data->align_corners && data->half_pixel_centers),
                 "%s: align_corners and half_pixel_centers cannot both be true "
                 "(as in RESIZE_BILINEAR)", kOp);
  TL_TFLM_ENSURE(grad_output != nullptr && grad_output->type == kTfLiteFloat32 &&
                     HasRank(grad_output, 4),
                 "%s: grad_output must be float32 NHWC", kOp);
  TL_TFLM_ENSURE(grad_input != nullptr && grad_input->type == kTfLiteFloat32 &&
                     HasRank(grad_input, 4),
                 "%s: grad_input must be float32 NHWC", kOp);
  const int* go = grad_output->dims->data;
  const int* gi = grad_input->dims->data;
  TL_TFLM_ENSURE(go[0] == gi[0] && go[3] == gi[3] && go[1] > 0 && go[2] > 0 &&
                     gi[1] > 0 && gi[2] > 0,
                 "%s: grad_output %dx%dx%dx%d and grad_input %dx%dx%dx%d must "
                 "share batch and channels", kOp, go[0], go[1], go[2], go[3],
                 gi[0], gi[1], gi[2], gi[3]);
  data->batch = gi[0];
  data->in_h = gi[1];
  data->in_w = gi[2];
  data->channels = gi[3];
  data->out_h = go[1];
  data->out_w = go[2];
  return kTfLiteOk;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  TL_TFLM_ENSURE(node->inputs->size == 1 && node->outputs->size == 1,
                 "%s: expects 1 input and 1 output, got %d and %d", kOp,
                 node->inputs->size, node->outputs->size);
  auto* data = static_cast<OpData*>(node->user_data);
  TL_TFLM_ENSURE(data != nullptr, "%s: out of persistent memory", kOp);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* grad_output = mc->AllocateTempInputTensor(node, 0);
  TfLiteTensor* grad_input = mc->AllocateTempOutputTensor(node, 0);
  const TfLiteStatus status = Validate(data, grad_output, grad_input);
  if (grad_output != nullptr) mc->DeallocateTempTfLiteTensor(grad_output);
  if (grad_input != nullptr) mc->DeallocateTempTfLiteTensor(grad_input);
  return status;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  const auto* d = static_cast<const OpData*>(node->user_data);
  reference::ResizeBilinearGrad(
      d->batch, d->in_h, d->in_w, d->channels, d->out_h, d->out_w,
      d->align_corners, d->half_pixel_centers,
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalInput(context, node, 0)),
      tflite::micro::GetTensorData<float>(
          tflite::micro::GetEvalOutput(context, node, 0)));
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_TL_RESIZE_BILINEAR_GRAD() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Eval);
  return &r;
}

}  // namespace tflm
}  // namespace tflite_tl
