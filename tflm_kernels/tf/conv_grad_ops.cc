// TensorFlow custom-op adapters for the convolution gradient kernels.
//
// Thin wrappers: validate shapes/attributes, allocate the output, call the
// framework-free reference kernel. They exist so the exact kernels that ship
// in firmware run, and are tested, on the host.
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tflm_kernels/reference/activation_quantization.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/conv_input_grad.h"
#include "tflm_kernels/reference/conv_weight_grad.h"
#include "tflm_kernels/reference/depthwise_input_grad.h"
#include "tflm_kernels/reference/depthwise_weight_grad.h"

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

// Filter size, strides and padding shared by all four ops.
struct ConvAttrs {
  int32_t filter_h = 0, filter_w = 0, stride_h = 1, stride_w = 1;
  reference::Padding padding = reference::Padding::kSame;

  void Read(OpKernelConstruction* ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("filter_height", &filter_h));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("filter_width", &filter_w));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("stride_h", &stride_h));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("stride_w", &stride_w));
    std::string pad;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padding", &pad));
    padding = pad == "SAME" ? reference::Padding::kSame : reference::Padding::kValid;
    OP_REQUIRES(ctx, filter_h > 0 && filter_w > 0 && stride_h > 0 && stride_w > 0,
                Invalid("filter sizes and strides must be positive, got filter ",
                                        filter_h, "x", filter_w, " stride ", stride_h,
                                        "x", stride_w));
  }
};

#define TL_CONV_ATTRS                                                   \
  Attr("filter_height: int >= 1")                                       \
      .Attr("filter_width: int >= 1")                                   \
      .Attr("stride_h: int >= 1 = 1")                                   \
      .Attr("stride_w: int >= 1 = 1")                                   \
      .Attr("padding: {'SAME', 'VALID'} = 'SAME'")

// Builds the geometry and checks grad_output's shape against it.
absl::Status GeometryFor(const ConvAttrs& a, int64_t batch, int64_t in_h,
                         int64_t in_w, int64_t in_c, int64_t out_c,
                         const Tensor& grad_output, reference::ConvGeometry* g,
                         int32_t groups = 1) {
  if (grad_output.dims() != 4) {
    return Invalid("grad_output must be 4-D NHWC, got shape ",
                   grad_output.shape().DebugString());
  }
  if (!reference::MakeConvGeometry(
          static_cast<int32_t>(batch), static_cast<int32_t>(in_h),
          static_cast<int32_t>(in_w), static_cast<int32_t>(in_c),
          static_cast<int32_t>(out_c), a.filter_h, a.filter_w, a.stride_h,
          a.stride_w, a.padding, g, groups)) {
    return Invalid("empty or inconsistent convolution: input [", batch, ",",
                   in_h, ",", in_w, ",", in_c, "], ", out_c,
                   " output channels, filter ", a.filter_h, "x", a.filter_w,
                   ", ", groups, " group(s)");
  }
  if (grad_output.dim_size(0) != batch || grad_output.dim_size(1) != g->out_h ||
      grad_output.dim_size(2) != g->out_w || grad_output.dim_size(3) != out_c) {
    return Invalid("grad_output shape ", grad_output.shape().DebugString(),
                   " does not match the convolution output [", batch, ",",
                   g->out_h, ",", g->out_w, ",", out_c, "]");
  }
  return absl::OkStatus();
}

// The weight-gradient ops read the layer input as float, or as the int8
// tensor saved by a quantized forward pass (real = input_scale *
// (q - input_zero_point); the two attributes are ignored for float).
#define TL_INPUT_QUANT_ATTRS                                            \
  Attr("T: {float, int8} = DT_FLOAT")                                   \
      .Attr("input_scale: float = 1.0")                                 \
      .Attr("input_zero_point: int = 0")

absl::Status ReadInputQuantization(OpKernelConstruction* ctx,
                                   reference::ActivationQuantization* quant) {
  *quant = reference::kNoQuantization;
  ::tensorflow::DataType type;
  TF_RETURN_IF_ERROR(ctx->GetAttr("T", &type));
  if (type != ::tensorflow::DT_INT8) return absl::OkStatus();
  TF_RETURN_IF_ERROR(ctx->GetAttr("input_scale", &quant->scale));
  TF_RETURN_IF_ERROR(ctx->GetAttr("input_zero_point", &quant->zero_point));
  if (!(quant->scale > 0.0f)) {
    return Invalid("input_scale must be positive, got ", quant->scale);
  }
  return absl::OkStatus();
}

REGISTER_OP("TlConvWeightGradSparse")
    .Input("input: T")
    .Input("grad_output: float")
    .Input("channels: int32")
    .Output("grad_filter: float")
    .TL_CONV_ATTRS
    .TL_INPUT_QUANT_ATTRS
    .Attr("groups: int >= 1 = 1")
    .SetShapeFn([](InferenceContext* c) {
      int32_t fh, fw, groups;
      TF_RETURN_IF_ERROR(c->GetAttr("filter_height", &fh));
      TF_RETURN_IF_ERROR(c->GetAttr("filter_width", &fw));
      TF_RETURN_IF_ERROR(c->GetAttr("groups", &groups));
      ShapeHandle input;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &input));
      ::tensorflow::shape_inference::DimensionHandle group_in;
      TF_RETURN_IF_ERROR(c->Divide(c->Dim(input, 3), groups, true, &group_in));
      c->set_output(0, c->MakeShape({c->Dim(c->input(2), 0), fh, fw, group_in}));
      return absl::OkStatus();
    })
    .Doc("Conv2D weight gradient of the output channels listed in `channels`, "
         "as OHWI filter rows [len(channels), filter_h, filter_w, in_c / groups].");

template <typename InputT>
class ConvWeightGradSparseOp : public OpKernel {
 public:
  explicit ConvWeightGradSparseOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    attrs_.Read(ctx);
    OP_REQUIRES_OK(ctx, ReadInputQuantization(ctx, &quant_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("groups", &groups_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& input = ctx->input(0);
    const Tensor& grad_output = ctx->input(1);
    const Tensor& channels = ctx->input(2);
    OP_REQUIRES(ctx, input.dims() == 4,
                Invalid("input must be 4-D NHWC, got ",
                                        input.shape().DebugString()));
    OP_REQUIRES(ctx, channels.dims() == 1,
                Invalid("channels must be 1-D, got ",
                                        channels.shape().DebugString()));
    reference::ConvGeometry g;
    OP_REQUIRES_OK(ctx, GeometryFor(attrs_, input.dim_size(0), input.dim_size(1), input.dim_size(2),
                     input.dim_size(3), grad_output.dims() == 4 ? grad_output.dim_size(3) : 0,
                     grad_output, &g, groups_));
    const int32_t k = static_cast<int32_t>(channels.dim_size(0));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({k, attrs_.filter_h, attrs_.filter_w,
                                            g.in_c / groups_}),
                            &out));
    OP_REQUIRES(ctx,
                reference::ConvWeightGradSparse<InputT>(
                    g, input.flat<InputT>().data(), quant_,
                    grad_output.flat<float>().data(), channels.flat<int32_t>().data(), k,
                    out->flat<float>().data()),
                Invalid("channels must lie in [0, ", g.out_c, ")"));
  }

 private:
  ConvAttrs attrs_;
  reference::ActivationQuantization quant_ = reference::kNoQuantization;
  int32_t groups_ = 1;
};
REGISTER_KERNEL_BUILDER(
    Name("TlConvWeightGradSparse").Device(DEVICE_CPU).TypeConstraint<float>("T"),
    ConvWeightGradSparseOp<float>);
REGISTER_KERNEL_BUILDER(
    Name("TlConvWeightGradSparse").Device(DEVICE_CPU).TypeConstraint<int8_t>("T"),
    ConvWeightGradSparseOp<int8_t>);

REGISTER_OP("TlDepthwiseWeightGrad")
    .Input("input: T")
    .Input("grad_output: float")
    .Output("grad_filter: float")
    .TL_CONV_ATTRS
    .TL_INPUT_QUANT_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      int32_t fh, fw;
      TF_RETURN_IF_ERROR(c->GetAttr("filter_height", &fh));
      TF_RETURN_IF_ERROR(c->GetAttr("filter_width", &fw));
      ShapeHandle grad;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 4, &grad));
      c->set_output(0, c->MakeShape({1, fh, fw, c->Dim(grad, 3)}));
      return absl::OkStatus();
    })
    .Doc("DepthwiseConv2D weight gradient in TFLite layout [1, filter_h, filter_w, "
         "in_c * depth_multiplier]; the multiplier is grad_output's channels / in_c.");

template <typename InputT>
class DepthwiseWeightGradOp : public OpKernel {
 public:
  explicit DepthwiseWeightGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    attrs_.Read(ctx);
    OP_REQUIRES_OK(ctx, ReadInputQuantization(ctx, &quant_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& input = ctx->input(0);
    const Tensor& grad_output = ctx->input(1);
    OP_REQUIRES(ctx, input.dims() == 4,
                Invalid("input must be 4-D NHWC, got ",
                                        input.shape().DebugString()));
    const int64_t out_c = grad_output.dims() == 4 ? grad_output.dim_size(3) : 0;
    OP_REQUIRES(ctx, input.dim_size(3) > 0 && out_c % input.dim_size(3) == 0,
                Invalid("grad_output channels (", out_c,
                                        ") must be a multiple of input channels (",
                                        input.dim_size(3), ")"));
    reference::ConvGeometry g;
    OP_REQUIRES_OK(ctx, GeometryFor(attrs_, input.dim_size(0), input.dim_size(1), input.dim_size(2),
                     input.dim_size(3), out_c, grad_output, &g));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({1, attrs_.filter_h, attrs_.filter_w, g.out_c}),
                            &out));
    reference::DepthwiseWeightGrad<InputT>(g, input.flat<InputT>().data(), quant_,
                                           grad_output.flat<float>().data(),
                                           out->flat<float>().data());
  }

 private:
  ConvAttrs attrs_;
  reference::ActivationQuantization quant_ = reference::kNoQuantization;
};
REGISTER_KERNEL_BUILDER(
    Name("TlDepthwiseWeightGrad").Device(DEVICE_CPU).TypeConstraint<float>("T"),
    DepthwiseWeightGradOp<float>);
REGISTER_KERNEL_BUILDER(
    Name("TlDepthwiseWeightGrad").Device(DEVICE_CPU).TypeConstraint<int8_t>("T"),
    DepthwiseWeightGradOp<int8_t>);

// The input gradient ops need the input's spatial size: with stride 2 it is
// not determined by the output size.
#define TL_INPUT_GRAD_ATTRS \
  Attr("input_height: int >= 1").Attr("input_width: int >= 1").TL_CONV_ATTRS

// The optional packed 1-bit mask of the layer's output activation: TF ops
// have no optional inputs, so an absent mask is an empty tensor with
// has_mask false.
absl::Status ReadMask(OpKernelContext* ctx, bool has_mask, const Tensor& grad_output,
                      const uint8_t** mask) {
  *mask = nullptr;
  if (!has_mask) return absl::OkStatus();
  const Tensor& m = ctx->input(3);
  const int64_t bytes = (grad_output.NumElements() + 7) / 8;
  if (m.dims() != 1 || m.dim_size(0) != bytes) {
    return Invalid("mask must be [", bytes, "] bytes for ", grad_output.NumElements(),
                   " gradients, got ", m.shape().DebugString());
  }
  *mask = m.flat<uint8_t>().data();
  return absl::OkStatus();
}

REGISTER_OP("TlConvInputGrad")
    .Input("grad_output: float")
    .Input("filter: int8")
    .Input("scales: float")
    .Input("mask: uint8")
    .Output("grad_input: float")
    .TL_INPUT_GRAD_ATTRS
    .Attr("groups: int >= 1 = 1")
    .Attr("has_mask: bool = false")
    .SetShapeFn([](InferenceContext* c) {
      int32_t h, w, groups;
      TF_RETURN_IF_ERROR(c->GetAttr("input_height", &h));
      TF_RETURN_IF_ERROR(c->GetAttr("input_width", &w));
      TF_RETURN_IF_ERROR(c->GetAttr("groups", &groups));
      ShapeHandle grad = c->input(0), filter = c->input(1);
      if (c->RankKnown(grad) && c->Rank(grad) == 2) {  // FULLY_CONNECTED
        TF_RETURN_IF_ERROR(c->WithRank(filter, 2, &filter));
        c->set_output(0, c->Matrix(c->Dim(grad, 0), c->Dim(filter, 1)));
        return absl::OkStatus();
      }
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &grad));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 4, &filter));
      ::tensorflow::shape_inference::DimensionHandle in_c;
      TF_RETURN_IF_ERROR(c->Multiply(c->Dim(filter, 3), groups, &in_c));
      c->set_output(0, c->MakeShape({c->Dim(grad, 0), h, w, in_c}));
      return absl::OkStatus();
    })
    .Doc("Conv2D input gradient through an int8 OHWI filter [out_c, kh, kw, "
         "in_c / groups] with per-output-channel scales (symmetric, zero point 0); "
         "rank-2 grad_output [N, out_c] and filter [out_c, in_c] are the fully "
         "connected form. With has_mask, the packed 1-bit mask is applied to "
         "grad_output as it is read.");

class ConvInputGradOp : public OpKernel {
 public:
  explicit ConvInputGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    attrs_.Read(ctx);
    OP_REQUIRES_OK(ctx, ctx->GetAttr("input_height", &in_h_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("input_width", &in_w_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("groups", &groups_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("has_mask", &has_mask_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& grad_output_in = ctx->input(0);
    const Tensor& filter_in = ctx->input(1);
    const Tensor& scales = ctx->input(2);
    // The fully connected form is the 1x1 convolution of [N, 1, 1, C].
    const bool fc = grad_output_in.dims() == 2 && filter_in.dims() == 2;
    Tensor grad_output = grad_output_in, filter = filter_in;
    if (fc) {
      OP_REQUIRES(ctx, grad_output.CopyFrom(grad_output_in,
                                            TensorShape({grad_output_in.dim_size(0), 1, 1,
                                                         grad_output_in.dim_size(1)})) &&
                           filter.CopyFrom(filter_in,
                                           TensorShape({filter_in.dim_size(0), 1, 1,
                                                        filter_in.dim_size(1)})),
                  Invalid("bad fully connected shapes"));
    }
    const uint8_t* mask = nullptr;
    OP_REQUIRES_OK(ctx, ReadMask(ctx, has_mask_, grad_output, &mask));
    OP_REQUIRES(ctx,
                filter.dims() == 4 && filter.dim_size(1) == attrs_.filter_h &&
                    filter.dim_size(2) == attrs_.filter_w,
                Invalid("filter must be OHWI [out_c, ", attrs_.filter_h, ", ",
                                        attrs_.filter_w, ", in_c / groups], got ",
                                        filter.shape().DebugString()));
    OP_REQUIRES(ctx, scales.dims() == 1 && scales.dim_size(0) == filter.dim_size(0),
                Invalid("scales must be [out_c] = [", filter.dim_size(0),
                                        "], got ", scales.shape().DebugString()));
    reference::ConvGeometry g;
    const int64_t batch = grad_output.dims() == 4 ? grad_output.dim_size(0) : 0;
    OP_REQUIRES_OK(ctx, GeometryFor(attrs_, batch, in_h_, in_w_, filter.dim_size(3) * groups_,
                                    filter.dim_size(0), grad_output, &g, groups_));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, fc ? TensorShape({batch, g.in_c})
                                  : TensorShape({batch, in_h_, in_w_, g.in_c}),
                            &out));
    reference::ConvInputGrad<int8_t>(g, grad_output.flat<float>().data(),
                                     filter.flat<int8_t>().data(),
                                     scales.flat<float>().data(), out->flat<float>().data(),
                                     mask);
  }

 private:
  ConvAttrs attrs_;
  int32_t in_h_ = 0, in_w_ = 0, groups_ = 1;
  bool has_mask_ = false;
};
REGISTER_KERNEL_BUILDER(Name("TlConvInputGrad").Device(DEVICE_CPU), ConvInputGradOp);

REGISTER_OP("TlDepthwiseInputGrad")
    .Input("grad_output: float")
    .Input("filter: int8")
    .Input("scales: float")
    .Input("mask: uint8")
    .Output("grad_input: float")
    .Attr("depth_multiplier: int >= 1 = 1")
    .Attr("has_mask: bool = false")
    .TL_INPUT_GRAD_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      int32_t h, w, m;
      TF_RETURN_IF_ERROR(c->GetAttr("input_height", &h));
      TF_RETURN_IF_ERROR(c->GetAttr("input_width", &w));
      TF_RETURN_IF_ERROR(c->GetAttr("depth_multiplier", &m));
      ShapeHandle grad;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &grad));
      ::tensorflow::shape_inference::DimensionHandle in_c;
      TF_RETURN_IF_ERROR(c->Divide(c->Dim(grad, 3), m, true, &in_c));
      c->set_output(0, c->MakeShape({c->Dim(grad, 0), h, w, in_c}));
      return absl::OkStatus();
    })
    .Doc("DepthwiseConv2D input gradient through an int8 [1, kh, kw, C*M] filter "
         "with per-channel scales; with has_mask, the packed 1-bit mask is applied "
         "to grad_output as it is read.");

class DepthwiseInputGradOp : public OpKernel {
 public:
  explicit DepthwiseInputGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    attrs_.Read(ctx);
    OP_REQUIRES_OK(ctx, ctx->GetAttr("input_height", &in_h_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("input_width", &in_w_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("depth_multiplier", &multiplier_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("has_mask", &has_mask_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& grad_output = ctx->input(0);
    const Tensor& filter = ctx->input(1);
    const Tensor& scales = ctx->input(2);
    const uint8_t* mask = nullptr;
    OP_REQUIRES_OK(ctx, ReadMask(ctx, has_mask_, grad_output, &mask));
    OP_REQUIRES(ctx,
                filter.dims() == 4 && filter.dim_size(0) == 1 &&
                    filter.dim_size(1) == attrs_.filter_h &&
                    filter.dim_size(2) == attrs_.filter_w &&
                    filter.dim_size(3) % multiplier_ == 0,
                Invalid("filter must be [1, ", attrs_.filter_h, ", ",
                                        attrs_.filter_w, ", in_c * ", multiplier_,
                                        "], got ", filter.shape().DebugString()));
    const int64_t out_c = filter.dim_size(3);
    OP_REQUIRES(ctx, scales.dims() == 1 && scales.dim_size(0) == out_c,
                Invalid("scales must be [", out_c, "], got ",
                                        scales.shape().DebugString()));
    reference::ConvGeometry g;
    const int64_t batch = grad_output.dims() == 4 ? grad_output.dim_size(0) : 0;
    OP_REQUIRES_OK(ctx, GeometryFor(attrs_, batch, in_h_, in_w_, out_c / multiplier_, out_c,
                     grad_output, &g));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({batch, in_h_, in_w_, g.in_c}),
                                             &out));
    reference::DepthwiseInputGrad<int8_t>(g, grad_output.flat<float>().data(),
                                          filter.flat<int8_t>().data(),
                                          scales.flat<float>().data(),
                                          out->flat<float>().data(), mask);
  }

 private:
  ConvAttrs attrs_;
  int32_t in_h_ = 0, in_w_ = 0, multiplier_ = 1;
  bool has_mask_ = false;
};
REGISTER_KERNEL_BUILDER(Name("TlDepthwiseInputGrad").Device(DEVICE_CPU),
                        DepthwiseInputGradOp);

}  // namespace
}  // namespace tflite_tl
