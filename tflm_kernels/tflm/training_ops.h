// TFLite Micro registrations of the tflite-tl training kernels (TL_* custom
// ops) and one call that adds them all to an op resolver.
//
// Firmware usage:
//   static tflite::MicroMutableOpResolver<kMyBuiltins + tflite_tl::tflm::kNumTrainingOps> r;
//   r.AddConv2D(); ...                       // the builtins of the model
//   if (tflite_tl::tflm::AddTrainingOps(r) != kTfLiteOk) { /* too small */ }
//
// Tensor contracts and custom options of each op: tflm_kernels/README.md
// (single source in Python: tflite_tl/kernels/tflm_ops.py).
#ifndef TFLM_KERNELS_TFLM_TRAINING_OPS_H_
#define TFLM_KERNELS_TFLM_TRAINING_OPS_H_

#include "tensorflow/lite/micro/micro_common.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

namespace tflite_tl {
namespace tflm {

TFLMRegistration* Register_TL_BIAS_GRAD();
TFLMRegistration* Register_TL_BIAS_GRAD_SGD();
TFLMRegistration* Register_TL_CONV_WGRAD_SPARSE();
TFLMRegistration* Register_TL_DEPTHWISE_WGRAD();
TFLMRegistration* Register_TL_CONV_INPUT_GRAD();
TFLMRegistration* Register_TL_DEPTHWISE_INPUT_GRAD();
TFLMRegistration* Register_TL_RELU_MASK();
TFLMRegistration* Register_TL_MASKED_GRAD();
TFLMRegistration* Register_TL_SGD_UPDATE();
TFLMRegistration* Register_TL_CONV_UPDATE();
TFLMRegistration* Register_TL_DEPTHWISE_UPDATE();
TFLMRegistration* Register_TL_DEPTHWISE_CHAIN_UPDATE();
TFLMRegistration* Register_TL_SOFTMAX_XENT();
TFLMRegistration* Register_TL_AVGPOOL_GRAD();
TFLMRegistration* Register_TL_RESIZE_BILINEAR_GRAD();
TFLMRegistration* Register_TL_GROUPNORM();
TFLMRegistration* Register_TL_GROUPNORM_GRAD();
TFLMRegistration* Register_TL_BATCHNORM_GRAD();
TFLMRegistration* Register_TL_WEIGHT_STANDARDIZE();
TFLMRegistration* Register_TL_WEIGHT_STANDARDIZE_GRAD();
TFLMRegistration* Register_TL_DEPTHWISE_CONV();
TFLMRegistration* Register_TL_INVERTED_RESIDUAL();
TFLMRegistration* Register_TL_INVERTED_RESIDUAL_INPUT_GRAD();
TFLMRegistration* Register_TL_INVERTED_RESIDUAL_UPDATE();
TFLMRegistration* Register_TL_CONV();
TFLMRegistration* Register_TL_WS_CONV_UPDATE();

// Resolver slots AddTrainingOps needs.
constexpr unsigned int kNumTrainingOps = 26;

// Adds every TL_* op. Fails (with a MicroPrintf from the resolver) if the
// resolver has fewer than kNumTrainingOps free slots or an op is already
// registered.
template <unsigned int tOpCount>
TfLiteStatus AddTrainingOps(tflite::MicroMutableOpResolver<tOpCount>& resolver) {
  struct Entry {
    const char* name;
    TFLMRegistration* (*registration)();
  };
  static const Entry kOps[] = {
      {"TL_BIAS_GRAD", Register_TL_BIAS_GRAD},
      {"TL_BIAS_GRAD_SGD", Register_TL_BIAS_GRAD_SGD},
      {"TL_CONV_WGRAD_SPARSE", Register_TL_CONV_WGRAD_SPARSE},
      {"TL_DEPTHWISE_WGRAD", Register_TL_DEPTHWISE_WGRAD},
      {"TL_CONV_INPUT_GRAD", Register_TL_CONV_INPUT_GRAD},
      {"TL_DEPTHWISE_INPUT_GRAD", Register_TL_DEPTHWISE_INPUT_GRAD},
      {"TL_RELU_MASK", Register_TL_RELU_MASK},
      {"TL_MASKED_GRAD", Register_TL_MASKED_GRAD},
      {"TL_SGD_UPDATE", Register_TL_SGD_UPDATE},
      {"TL_CONV_UPDATE", Register_TL_CONV_UPDATE},
      {"TL_DEPTHWISE_UPDATE", Register_TL_DEPTHWISE_UPDATE},
      {"TL_DEPTHWISE_CHAIN_UPDATE", Register_TL_DEPTHWISE_CHAIN_UPDATE},
      {"TL_SOFTMAX_XENT", Register_TL_SOFTMAX_XENT},
      {"TL_AVGPOOL_GRAD", Register_TL_AVGPOOL_GRAD},
      {"TL_RESIZE_BILINEAR_GRAD", Register_TL_RESIZE_BILINEAR_GRAD},
      {"TL_GROUPNORM", Register_TL_GROUPNORM},
      {"TL_GROUPNORM_GRAD", Register_TL_GROUPNORM_GRAD},
      {"TL_BATCHNORM_GRAD", Register_TL_BATCHNORM_GRAD},
      {"TL_WEIGHT_STANDARDIZE", Register_TL_WEIGHT_STANDARDIZE},
      {"TL_WEIGHT_STANDARDIZE_GRAD", Register_TL_WEIGHT_STANDARDIZE_GRAD},
      {"TL_DEPTHWISE_CONV", Register_TL_DEPTHWISE_CONV},
      {"TL_INVERTED_RESIDUAL", Register_TL_INVERTED_RESIDUAL},
      {"TL_INVERTED_RESIDUAL_INPUT_GRAD", Register_TL_INVERTED_RESIDUAL_INPUT_GRAD},
      {"TL_INVERTED_RESIDUAL_UPDATE", Register_TL_INVERTED_RESIDUAL_UPDATE},
      {"TL_CONV", Register_TL_CONV},
      {"TL_WS_CONV_UPDATE", Register_TL_WS_CONV_UPDATE},
  };
  static_assert(sizeof(kOps) / sizeof(kOps[0]) == kNumTrainingOps,
                "kNumTrainingOps out of date");
  for (const Entry& op : kOps) {
    const TfLiteStatus status = resolver.AddCustom(op.name, op.registration());
    if (status != kTfLiteOk) return status;
  }
  return kTfLiteOk;
}

}  // namespace tflm
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_TFLM_TRAINING_OPS_H_
