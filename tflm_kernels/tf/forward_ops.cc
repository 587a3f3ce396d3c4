// TensorFlow custom-op adapters of TL_DEPTHWISE_CONV (reference/depthwise_conv.h)
// and TL_CONV (reference/conv.h, weight_standardize.h): the train step's float
// depthwise and conv forward with their fused activation and the 1-bit mask of
// the activation's linear range. TF ops have no optional inputs or outputs: an
// absent bias is an empty tensor with has_bias false, the mask is always
// returned (all zero without an activation, where TFLM's op takes no mask
// output), and TlConv's filter_hat is empty ([0]) without standardize.
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/conv.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/depthwise_conv.h"
#include "tflm_kernels/reference/weight_standardize.h"

namespace tflite_tl {
namespace {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::shape_inference::InferenceContext;

template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

REGISTER_OP("TlDepthwiseConv")
    .Input("input: float")
    .Input("filter: float")
    .Input("bias: float")
    .Output("output: float")
    .Output("mask: uint8")
    .Attr("has_bias: bool = false")
    .Attr("activation: int = 0")
    .Attr("stride_h: int >= 1 = 1")
    .Attr("stride_w: int >= 1 = 1")
    .Attr("padding: {'SAME', 'VALID'} = 'SAME'")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->UnknownShapeOfRank(4));
      c->set_output(1, c->Vector(c->UnknownDim()));
      return absl::OkStatus();
    })
    .Doc("TL_DEPTHWISE_CONV: float depthwise convolution (filter [1, kh, kw, "
         "C*M]) + bias + activation (0 none, 1 ReLU, 2 ReLU6), and the packed "
         "1-bit mask of the activation's linear range on the output.");

class DepthwiseConvOp : public OpKernel {
 public:
  explicit DepthwiseConvOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("has_bias", &has_bias_));
    int32_t activation = 0;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("activation", &activation));
    OP_REQUIRES(ctx, activation >= 0 && activation <= 2,
                Invalid("activation must be 0 (none), 1 (ReLU) or 2 (ReLU6), got ",
                        activation));
    activation_ = static_cast<reference::Activation>(activation);
    OP_REQUIRES_OK(ctx, ctx->GetAttr("stride_h", &stride_h_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("stride_w", &stride_w_));
    std::string pad;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padding", &pad));
    padding_ = pad == "SAME" ? reference::Padding::kSame : reference::Padding::kValid;
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& input = ctx->input(0);
    const Tensor& filter = ctx->input(1);
    const Tensor& bias = ctx->input(2);
    OP_REQUIRES(ctx, input.dims() == 4,
                Invalid("input must be NHWC, got ", input.shape().DebugString()));
    OP_REQUIRES(ctx, filter.dims() == 4 && filter.dim_size(0) == 1 &&
                         input.dim_size(3) > 0 && filter.dim_size(3) % input.dim_size(3) == 0,
                Invalid("filter must be [1, kh, kw, a multiple of the input's channels], got ",
                        filter.shape().DebugString()));
    const int32_t out_c = static_cast<int32_t>(filter.dim_size(3));
    if (has_bias_) {
      OP_REQUIRES(ctx, bias.dims() == 1 && bias.dim_size(0) == out_c,
                  Invalid("bias must be [", out_c, "], got ", bias.shape().DebugString()));
    }
    reference::ConvGeometry g{};
    OP_REQUIRES(ctx,
                reference::MakeConvGeometry(
                    static_cast<int32_t>(input.dim_size(0)),
                    static_cast<int32_t>(input.dim_size(1)),
                    static_cast<int32_t>(input.dim_size(2)),
                    static_cast<int32_t>(input.dim_size(3)), out_c,
                    static_cast<int32_t>(filter.dim_size(1)),
                    static_cast<int32_t>(filter.dim_size(2)), stride_h_, stride_w_,
                    padding_, &g),
                Invalid("empty or inconsistent convolution"));
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({g.batch, g.out_h, g.out_w, g.out_c}), &output));
    const int64_t size = output->NumElements();
    Tensor* mask = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({(size + 7) / 8}), &mask));
    uint8_t* m = mask->flat<uint8_t>().data();
    for (int64_t i = 0; i < mask->NumElements(); ++i) m[i] = 0;
    reference::DepthwiseConv(g, input.flat<float>().data(), filter.flat<float>().data(),
                             has_bias_ ? bias.flat<float>().data() : nullptr, activation_,
                             output->flat<float>().data(),
                             activation_ != reference::Activation::kNone ? m : nullptr);
  }

 private:
  bool has_bias_ = false;
  reference::Activation activation_ = reference::Activation::kNone;
  int32_t stride_h_ = 1, stride_w_ = 1;
  reference::Padding padding_ = reference::Padding::kSame;
};

REGISTER_KERNEL_BUILDER(Name("TlDepthwiseConv").Device(DEVICE_CPU), DepthwiseConvOp);

REGISTER_OP("TlConv")
    .Input("input: float")
    .Input("filter: float")
    .Input("bias: float")
    .Output("output: float")
    .Output("mask: uint8")
    .Output("filter_hat: float")
    .Attr("has_bias: bool = false")
    .Attr("activation: int = 0")
    .Attr("standardize: bool = false")
    .Attr("epsilon: float = 0.0")
    .Attr("stride_h: int >= 1 = 1")
    .Attr("stride_w: int >= 1 = 1")
    .Attr("padding: {'SAME', 'VALID'} = 'SAME'")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->UnknownShapeOfRank(4));
      c->set_output(1, c->Vector(c->UnknownDim()));
      c->set_output(2, c->UnknownShape());
      return absl::OkStatus();
    })
    .Doc("TL_CONV: float convolution (OHWI filter [Co, kh, kw, Ci / groups]) + "
         "bias + activation (0 none, 1 ReLU, 2 ReLU6), the packed 1-bit mask of "
         "the activation's linear range on the output, and with standardize the "
         "weight-standardised filter it convolves with (filter_hat).");

class ConvOp : public OpKernel {
 public:
  explicit ConvOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("has_bias", &has_bias_));
    int32_t activation = 0;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("activation", &activation));
    OP_REQUIRES(ctx, activation >= 0 && activation <= 2,
                Invalid("activation must be 0 (none), 1 (ReLU) or 2 (ReLU6), got ",
                        activation));
    activation_ = static_cast<reference::Activation>(activation);
    OP_REQUIRES_OK(ctx, ctx->GetAttr("standardize", &standardize_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("epsilon", &epsilon_));
    OP_REQUIRES(ctx, epsilon_ >= 0.0f, Invalid("epsilon must be >= 0, got ", epsilon_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("stride_h", &stride_h_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("stride_w", &stride_w_));
    std::string pad;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padding", &pad));
    padding_ = pad == "SAME" ? reference::Padding::kSame : reference::Padding::kValid;
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& input = ctx->input(0);
    const Tensor& filter = ctx->input(1);
    const Tensor& bias = ctx->input(2);
    OP_REQUIRES(ctx, input.dims() == 4,
                Invalid("input must be NHWC, got ", input.shape().DebugString()));
    const int64_t fi = filter.dims() == 4 ? filter.dim_size(3) : 0;
    const int64_t groups = fi > 0 ? input.dim_size(3) / fi : 0;
    OP_REQUIRES(ctx, groups > 0 && input.dim_size(3) % fi == 0 &&
                         filter.dim_size(0) % groups == 0,
                Invalid("filter must be OHWI [Co, kh, kw, Ci / groups] with groups "
                        "dividing Co, got ", filter.shape().DebugString(), " for input ",
                        input.shape().DebugString()));
    const int32_t out_c = static_cast<int32_t>(filter.dim_size(0));
    if (has_bias_) {
      OP_REQUIRES(ctx, bias.dims() == 1 && bias.dim_size(0) == out_c,
                  Invalid("bias must be [", out_c, "], got ", bias.shape().DebugString()));
    }
    reference::ConvGeometry g{};
    OP_REQUIRES(ctx,
                reference::MakeConvGeometry(
                    static_cast<int32_t>(input.dim_size(0)),
                    static_cast<int32_t>(input.dim_size(1)),
                    static_cast<int32_t>(input.dim_size(2)),
                    static_cast<int32_t>(input.dim_size(3)), out_c,
                    static_cast<int32_t>(filter.dim_size(1)),
                    static_cast<int32_t>(filter.dim_size(2)), stride_h_, stride_w_,
                    padding_, &g, static_cast<int32_t>(groups)),
                Invalid("empty or inconsistent convolution"));
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({g.batch, g.out_h, g.out_w, g.out_c}), &output));
    const int64_t size = output->NumElements();
    Tensor* mask = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({(size + 7) / 8}), &mask));
    uint8_t* m = mask->flat<uint8_t>().data();
    for (int64_t i = 0; i < mask->NumElements(); ++i) m[i] = 0;
    Tensor* filter_hat = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            2, standardize_ ? filter.shape() : TensorShape({0}),
                            &filter_hat));
    const float* w = filter.flat<float>().data();
    if (standardize_) {
      float* w_hat = filter_hat->flat<float>().data();
      reference::WeightStandardize(w, out_c, static_cast<int32_t>(filter.NumElements() / out_c),
                                   epsilon_, w_hat);
      w = w_hat;
    }
    reference::Conv(g, input.flat<float>().data(), w,
                    has_bias_ ? bias.flat<float>().data() : nullptr, activation_,
                    output->flat<float>().data(),
                    activation_ != reference::Activation::kNone ? m : nullptr);
  }

 private:
  bool has_bias_ = false;
  reference::Activation activation_ = reference::Activation::kNone;
  bool standardize_ = false;
  float epsilon_ = 0.0f;
  int32_t stride_h_ = 1, stride_w_ = 1;
  reference::Padding padding_ = reference::Padding::kSame;
};

REGISTER_KERNEL_BUILDER(Name("TlConv").Device(DEVICE_CPU), ConvOp);

}  // namespace
}  // namespace tflite_tl
