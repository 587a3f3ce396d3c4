// TensorFlow custom-op adapters for the bias gradient, the 1-bit activation
// masks and the SGD updates. Functional (new tensors out) rather than in
// place: in-place updates are a firmware concern, the arithmetic is the same.
#include <cstdint>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/bias_grad.h"
#include "tflm_kernels/reference/sgd.h"

namespace tflite_tl {
namespace {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

// The element count the 32-bit reference kernels can index.
absl::Status CheckSize(const Tensor& t, const char* name) {
  if (t.NumElements() > std::numeric_limits<int32_t>::max()) {
    return Invalid(name, " has ", t.NumElements(), " elements; the kernels index with int32");
  }
  return absl::OkStatus();
}

// Splits [..., C] into rows x C.
absl::Status RowsAndChannels(const Tensor& grad_output, int32_t* rows, int32_t* channels) {
  if (grad_output.dims() < 1 || grad_output.dim_size(grad_output.dims() - 1) == 0) {
    return Invalid("grad_output must have a non-empty last (channel) axis, got ",
                   grad_output.shape().DebugString());
  }
  *channels = static_cast<int32_t>(grad_output.dim_size(grad_output.dims() - 1));
  *rows = static_cast<int32_t>(grad_output.NumElements() / *channels);
  return CheckSize(grad_output, "grad_output");
}

absl::Status ChannelShape(InferenceContext* c) {
  ShapeHandle grad;
  TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(0), 1, &grad));
  c->set_output(0, c->Vector(c->Dim(grad, -1)));
  return absl::OkStatus();
}

REGISTER_OP("TlBiasGrad")
    .Input("grad_output: float")
    .Output("grad_bias: float")
    .SetShapeFn(ChannelShape)
    .Doc("Bias gradient: grad_output summed over every axis but the last.");

class BiasGradOp : public OpKernel {
 public:
  using OpKernel::OpKernel;
  void Compute(OpKernelContext* ctx) override {
    const Tensor& grad_output = ctx->input(0);
    int32_t rows = 0, channels = 0;
    OP_REQUIRES_OK(ctx, RowsAndChannels(grad_output, &rows, &channels));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({channels}), &out));
    reference::BiasGrad(grad_output.flat<float>().data(), rows, channels,
                        out->flat<float>().data());
  }
};
REGISTER_KERNEL_BUILDER(Name("TlBiasGrad").Device(DEVICE_CPU), BiasGradOp);

REGISTER_OP("TlBiasGradSgd")
    .Input("grad_output: float")
    .Input("bias: float")
    .Output("new_bias: float")
    .Output("grad_bias: float")
    .Attr("learning_rate: float")
    .SetShapeFn([](InferenceContext* c) {
      TF_RETURN_IF_ERROR(ChannelShape(c));
      c->set_output(1, c->output(0));
      return absl::OkStatus();
    })
    .Doc("Bias gradient fused with the SGD step new_bias = bias - lr * grad.");

class BiasGradSgdOp : public OpKernel {
 public:
  explicit BiasGradSgdOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("learning_rate", &learning_rate_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& grad_output = ctx->input(0);
    const Tensor& bias = ctx->input(1);
    int32_t rows = 0, channels = 0;
    OP_REQUIRES_OK(ctx, RowsAndChannels(grad_output, &rows, &channels));
    OP_REQUIRES(ctx, bias.dims() == 1 && bias.dim_size(0) == channels,
                Invalid("bias must be [", channels, "], got ", bias.shape().DebugString()));
    Tensor* new_bias = nullptr;
    Tensor* grad_bias = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, bias.shape(), &new_bias));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, bias.shape(), &grad_bias));
    new_bias->flat<float>() = bias.flat<float>();
    reference::BiasGradFusedSgd(grad_output.flat<float>().data(), rows, channels,
                                learning_rate_, new_bias->flat<float>().data(),
                                grad_bias->flat<float>().data());
  }

 private:
  float learning_rate_ = 0.0f;
};
REGISTER_KERNEL_BUILDER(Name("TlBiasGradSgd").Device(DEVICE_CPU), BiasGradSgdOp);

REGISTER_OP("TlReluMask")
    .Input("x: float")
    .Output("mask: uint8")
    .Attr("relu6: bool = false")
    .SetShapeFn([](InferenceContext* c) {
      // The byte count is only known when the element count is.
      ::tensorflow::shape_inference::DimensionHandle n = c->NumElements(c->input(0));
      c->set_output(0, c->Vector(c->ValueKnown(n) ? (c->Value(n) + 7) / 8
                                                  : InferenceContext::kUnknownDim));
      return absl::OkStatus();
    })
    .Doc("1-bit mask of the linear range of ReLU (x > 0) or ReLU6 (0 < x < 6), "
         "packed least significant bit first into ceil(size / 8) bytes.");

class ReluMaskOp : public OpKernel {
 public:
  explicit ReluMaskOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("relu6", &relu6_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    OP_REQUIRES_OK(ctx, CheckSize(x, "x"));
    const int32_t size = static_cast<int32_t>(x.NumElements());
    Tensor* mask = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({reference::MaskBytes(size)}),
                                             &mask));
    const float upper = relu6_ ? 6.0f : std::numeric_limits<float>::infinity();
    reference::PackActivationMask<float, float>(x.flat<float>().data(), size, 0.0f, upper,
                                                mask->flat<uint8_t>().data());
  }

 private:
  bool relu6_ = false;
};
REGISTER_KERNEL_BUILDER(Name("TlReluMask").Device(DEVICE_CPU), ReluMaskOp);

REGISTER_OP("TlMaskedGrad")
    .Input("grad_output: float")
    .Input("mask: uint8")
    .Output("grad_input: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      return absl::OkStatus();
    })
    .Doc("grad_output where the 1-bit mask is set, 0 elsewhere.");

class MaskedGradOp : public OpKernel {
 public:
  using OpKernel::OpKernel;
  void Compute(OpKernelContext* ctx) override {
    const Tensor& grad_output = ctx->input(0);
    const Tensor& mask = ctx->input(1);
    OP_REQUIRES_OK(ctx, CheckSize(grad_output, "grad_output"));
    const int32_t size = static_cast<int32_t>(grad_output.NumElements());
    OP_REQUIRES(ctx, mask.dims() == 1 && mask.dim_size(0) == reference::MaskBytes(size),
                Invalid("mask must be [", reference::MaskBytes(size), "] bytes for ", size,
                        " elements, got ", mask.shape().DebugString()));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, grad_output.shape(), &out));
    reference::ApplyActivationMask(grad_output.flat<float>().data(),
                                   mask.flat<uint8_t>().data(), size,
                                   out->flat<float>().data());
  }
};
REGISTER_KERNEL_BUILDER(Name("TlMaskedGrad").Device(DEVICE_CPU), MaskedGradOp);

absl::Status SameShape(const Tensor& a, const Tensor& b, const char* name) {
  if (a.shape() != b.shape()) {
    return Invalid(name, " shape ", b.shape().DebugString(), " differs from weights shape ",
                   a.shape().DebugString());
  }
  return CheckSize(a, "weights");
}

REGISTER_OP("TlSgdUpdate")
    .Input("weights: float")
    .Input("grad: float")
    .Output("new_weights: float")
    .Attr("learning_rate: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      return absl::OkStatus();
    })
    .Doc("new_weights = weights - learning_rate * grad (Keras SGD arithmetic).");

class SgdUpdateOp : public OpKernel {
 public:
  explicit SgdUpdateOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("learning_rate", &learning_rate_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& weights = ctx->input(0);
    const Tensor& grad = ctx->input(1);
    OP_REQUIRES_OK(ctx, SameShape(weights, grad, "grad"));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, weights.shape(), &out));
    out->flat<float>() = weights.flat<float>();
    reference::SgdUpdate(grad.flat<float>().data(), static_cast<int32_t>(grad.NumElements()),
                         learning_rate_, out->flat<float>().data());
  }

 private:
  float learning_rate_ = 0.0f;
};
REGISTER_KERNEL_BUILDER(Name("TlSgdUpdate").Device(DEVICE_CPU), SgdUpdateOp);

REGISTER_OP("TlSgdMomentumUpdate")
    .Input("weights: float")
    .Input("velocity: float")
    .Input("grad: float")
    .Output("new_weights: float")
    .Output("new_velocity: float")
    .Attr("learning_rate: float")
    .Attr("momentum: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->input(0));
      return absl::OkStatus();
    })
    .Doc("SGD with momentum, Keras arithmetic: v = -lr*g + momentum*v; w = w + v.");

class SgdMomentumUpdateOp : public OpKernel {
 public:
  explicit SgdMomentumUpdateOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("learning_rate", &learning_rate_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("momentum", &momentum_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& weights = ctx->input(0);
    const Tensor& velocity = ctx->input(1);
    const Tensor& grad = ctx->input(2);
    OP_REQUIRES_OK(ctx, SameShape(weights, velocity, "velocity"));
    OP_REQUIRES_OK(ctx, SameShape(weights, grad, "grad"));
    Tensor* new_weights = nullptr;
    Tensor* new_velocity = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, weights.shape(), &new_weights));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, weights.shape(), &new_velocity));
    new_weights->flat<float>() = weights.flat<float>();
    new_velocity->flat<float>() = velocity.flat<float>();
    reference::SgdMomentumUpdate(grad.flat<float>().data(),
                                 static_cast<int32_t>(grad.NumElements()), learning_rate_,
                                 momentum_, new_velocity->flat<float>().data(),
                                 new_weights->flat<float>().data());
  }

 private:
  float learning_rate_ = 0.0f, momentum_ = 0.0f;
};
REGISTER_KERNEL_BUILDER(Name("TlSgdMomentumUpdate").Device(DEVICE_CPU), SgdMomentumUpdateOp);

}  // namespace
}  // namespace tflite_tl
