// TensorFlow custom-op adapters of the forward kernels.
//
// TL_DEPTHWISE_CONV (reference/depthwise_conv.h) and TL_CONV
// (reference/conv.h, weight_standardize.h): the train step's float depthwise
// and conv forward with their fused activation and the 1-bit mask of the
// activation's linear range. TF ops have no optional inputs or outputs: an
// absent bias is an empty tensor with has_bias false, the mask is always
// returned (all zero without an activation, where TFLM's op takes no mask
// output), and TlConv's filter_hat is empty ([0]) without standardize.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/conv.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/depthwise_conv.h"
#include "tflm_kernels/reference/inverted_residual.h"
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

// The attributes TlDepthwiseConv and TlConv share: has_bias, activation
// (checked), stride_h, stride_w and padding.
absl::Status ReadForwardAttrs(OpKernelConstruction* ctx, bool* has_bias,
                              reference::Activation* activation, int32_t* stride_h,
                              int32_t* stride_w, reference::Padding* padding) {
  TF_RETURN_IF_ERROR(ctx->GetAttr("has_bias", has_bias));
  int32_t code = 0;
  TF_RETURN_IF_ERROR(ctx->GetAttr("activation", &code));
  if (code < 0 || code > 2) {
    return Invalid("activation must be 0 (none), 1 (ReLU) or 2 (ReLU6), got ", code);
  }
  *activation = static_cast<reference::Activation>(code);
  TF_RETURN_IF_ERROR(ctx->GetAttr("stride_h", stride_h));
  TF_RETURN_IF_ERROR(ctx->GetAttr("stride_w", stride_w));
  std::string pad;
  TF_RETURN_IF_ERROR(ctx->GetAttr("padding", &pad));
  *padding = pad == "SAME" ? reference::Padding::kSame : reference::Padding::kValid;
  return absl::OkStatus();
}

class DepthwiseConvOp : public OpKernel {
 public:
  explicit DepthwiseConvOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ReadForwardAttrs(ctx, &has_bias_, &activation_, &stride_h_,
                                         &stride_w_, &padding_));
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
    OP_REQUIRES_OK(ctx, ReadForwardAttrs(ctx, &has_bias_, &activation_, &stride_h_,
                                         &stride_w_, &padding_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("standardize", &standardize_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("epsilon", &epsilon_));
    OP_REQUIRES(ctx, epsilon_ >= 0.0f, Invalid("epsilon must be >= 0, got ", epsilon_));
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

// TensorFlow custom-op adapter of TL_INVERTED_RESIDUAL
// (reference/inverted_residual.h): a frozen int8 [expand] -> depthwise ->
// project block with TFLM's integer arithmetic; the expand is any one-group
// conv (filter [E, kh_e, kw_e, Cin], its own strides and padding). The quantization TFLM reads
// from tensors is passed as attributes and per-channel scale inputs; without
// an expand conv (has_expand false) the expand inputs are empty tensors. The
// two masks (TFLM's optional outputs) are always returned: expand_mask is
// empty ([0]) without an expand conv, and a mask is all zero where its stage
// has no activation.
namespace tflite_tl {
namespace {

REGISTER_OP("TlInvertedResidual")
    .Input("input: int8")
    .Input("expand_filter: int8")
    .Input("expand_bias: int32")
    .Input("expand_scales: float")
    .Input("depthwise_filter: int8")
    .Input("depthwise_bias: int32")
    .Input("depthwise_scales: float")
    .Input("project_filter: int8")
    .Input("project_bias: int32")
    .Input("project_scales: float")
    .Output("output: int8")
    .Output("expand_mask: uint8")
    .Output("depthwise_mask: uint8")
    .Attr("has_expand: bool = true")
    .Attr("input_scale: float")
    .Attr("input_zero_point: int")
    .Attr("expand_scale: float = 0")
    .Attr("expand_zero_point: int = 0")
    .Attr("expand_activation: int = 2")
    .Attr("expand_stride_h: int >= 1 = 1")
    .Attr("expand_stride_w: int >= 1 = 1")
    .Attr("expand_padding: {'SAME', 'VALID'} = 'SAME'")
    .Attr("depthwise_scale: float")
    .Attr("depthwise_zero_point: int")
    .Attr("depthwise_activation: int = 2")
    .Attr("output_scale: float")
    .Attr("output_zero_point: int")
    .Attr("stride_h: int >= 1 = 1")
    .Attr("stride_w: int >= 1 = 1")
    .Attr("padding: {'SAME', 'VALID'} = 'SAME'")
    .SetShapeFn([](::tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->UnknownShapeOfRank(4));
      c->set_output(1, c->Vector(c->UnknownDim()));
      c->set_output(2, c->Vector(c->UnknownDim()));
      return absl::OkStatus();
    })
    .Doc("TL_INVERTED_RESIDUAL: int8 expand conv (optional; any window, "
         "stride and padding, one group) -> depthwise conv -> linear 1x1 "
         "project conv, bit-identical to TFLM's int8 CONV_2D -> "
         "DEPTHWISE_CONV_2D -> CONV_2D, and the packed 1-bit masks of the "
         "expand and depthwise activations' linear ranges (as TL_RELU_MASK on "
         "the int8 expanded map and depthwise output).");

class InvertedResidualOp : public ::tensorflow::OpKernel {
 public:
  explicit InvertedResidualOp(::tensorflow::OpKernelConstruction* ctx)
      : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("has_expand", &has_expand_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("input_scale", &input_scale_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("input_zero_point", &input_zero_point_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("expand_scale", &expand_scale_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("expand_zero_point", &expand_zero_point_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("expand_activation", &expand_activation_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("expand_stride_h", &expand_stride_h_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("expand_stride_w", &expand_stride_w_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("depthwise_scale", &depthwise_scale_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("depthwise_zero_point", &depthwise_zero_point_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("depthwise_activation", &depthwise_activation_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("output_scale", &output_scale_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("output_zero_point", &output_zero_point_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("stride_h", &stride_h_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("stride_w", &stride_w_));
    std::string pad;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padding", &pad));
    padding_ = pad == "SAME" ? reference::Padding::kSame : reference::Padding::kValid;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("expand_padding", &pad));
    expand_padding_ = pad == "SAME" ? reference::Padding::kSame : reference::Padding::kValid;
    for (int32_t a : {expand_activation_, depthwise_activation_}) {
      OP_REQUIRES(ctx, a >= 0 && a <= 2,
                  Invalid("activations are 0 (none), 1 (ReLU) or 2 (ReLU6), got ", a));
    }
    OP_REQUIRES(ctx, input_scale_ > 0 && depthwise_scale_ > 0 && output_scale_ > 0 &&
                         (!has_expand_ || expand_scale_ > 0),
                Invalid("activation scales must be positive"));
  }

  void Compute(::tensorflow::OpKernelContext* ctx) override {
    const Tensor& input = ctx->input(0);
    const Tensor& dw = ctx->input(4);
    OP_REQUIRES(ctx, input.dims() == 4,
                Invalid("input must be NHWC, got ", input.shape().DebugString()));
    OP_REQUIRES(ctx, dw.dims() == 4 && dw.dim_size(0) == 1,
                Invalid("depthwise_filter must be [1, kh, kw, E], got ",
                        dw.shape().DebugString()));
    const int64_t e_c = dw.dim_size(3);
    const Tensor& pf = ctx->input(7);
    OP_REQUIRES(ctx, pf.dims() == 4 && pf.dim_size(1) == 1 && pf.dim_size(2) == 1 &&
                         pf.dim_size(3) == e_c,
                Invalid("project_filter must be [Cout, 1, 1, ", e_c, "], got ",
                        pf.shape().DebugString()));
    const int64_t out_c = pf.dim_size(0);
    if (has_expand_) {
      const Tensor& ef = ctx->input(1);
      OP_REQUIRES(ctx, ef.dims() == 4 && ef.dim_size(0) == e_c && ef.dim_size(1) > 0 &&
                           ef.dim_size(2) > 0 && ef.dim_size(3) == input.dim_size(3),
                  Invalid("expand_filter must be [", e_c, ", kh, kw, ", input.dim_size(3),
                          "], got ", ef.shape().DebugString()));
    } else {
      OP_REQUIRES(ctx, e_c == input.dim_size(3),
                  Invalid("without an expand conv the depthwise_filter has the input's ",
                          input.dim_size(3), " channels, not ", e_c));
    }
    const int first = has_expand_ ? 1 : 4;
    for (int i = first; i < 10; i += 3) {
      const int64_t channels = i == 7 ? out_c : e_c;
      OP_REQUIRES(ctx, ctx->input(i + 1).NumElements() == channels &&
                           ctx->input(i + 2).NumElements() == channels,
                  Invalid("input ", i + 1, " (bias) and ", i + 2, " (scales) need ",
                          channels, " values"));
    }
    reference::InvertedResidualShape s{};
    s.batch = static_cast<int32_t>(input.dim_size(0));
    s.in_h = static_cast<int32_t>(input.dim_size(1));
    s.in_w = static_cast<int32_t>(input.dim_size(2));
    s.in_c = static_cast<int32_t>(input.dim_size(3));
    s.expanded_c = static_cast<int32_t>(e_c);
    s.out_c = static_cast<int32_t>(out_c);
    s.filter_h = static_cast<int32_t>(dw.dim_size(1));
    s.filter_w = static_cast<int32_t>(dw.dim_size(2));
    s.stride_h = stride_h_;
    s.stride_w = stride_w_;
    s.has_expand = has_expand_;
    s.expand_filter_h = has_expand_ ? static_cast<int32_t>(ctx->input(1).dim_size(1)) : 1;
    s.expand_filter_w = has_expand_ ? static_cast<int32_t>(ctx->input(1).dim_size(2)) : 1;
    s.expand_stride_h = expand_stride_h_;
    s.expand_stride_w = expand_stride_w_;
    OP_REQUIRES(ctx,
                reference::SetInvertedResidualGeometry(expand_padding_, padding_, &s) &&
                    s.batch > 0,
                Invalid("empty or inconsistent block"));

    std::vector<int32_t> quant(4 * static_cast<size_t>(e_c) + 2 * static_cast<size_t>(out_c));
    reference::Int8Stage expand{}, depthwise{}, project{};
    float dw_in_scale = input_scale_;
    int32_t dw_in_zero_point = input_zero_point_;
    int32_t* next = quant.data();
    if (has_expand_) {
      Stage(ctx, 1, s.expanded_c, input_scale_, input_zero_point_, expand_scale_,
            expand_zero_point_, expand_activation_, next, &expand);
      dw_in_scale = expand_scale_;
      dw_in_zero_point = expand_zero_point_;
    }
    next += 2 * e_c;
    Stage(ctx, 4, s.expanded_c, dw_in_scale, dw_in_zero_point, depthwise_scale_,
          depthwise_zero_point_, depthwise_activation_, next, &depthwise);
    next += 2 * e_c;
    Stage(ctx, 7, s.out_c, depthwise_scale_, depthwise_zero_point_, output_scale_,
          output_zero_point_, 0, next, &project);
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({s.batch, s.out_h, s.out_w, s.out_c}), &output));
    const int64_t expanded =
        has_expand_ ? int64_t{s.batch} * s.expanded_h * s.expanded_w * e_c : 0;
    const int64_t dw_out = int64_t{s.batch} * s.out_h * s.out_w * e_c;
    OP_REQUIRES(ctx, expanded <= INT32_MAX && dw_out <= INT32_MAX,
                Invalid("the expanded map is too large"));
    Tensor* expand_mask = nullptr;
    Tensor* dw_mask = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({(expanded + 7) / 8}), &expand_mask));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({(dw_out + 7) / 8}), &dw_mask));
    reference::InvertedResidualMasks masks{};
    if (has_expand_ && expand_activation_ != 0) {
      masks.expand = expand_mask->flat<uint8_t>().data();
      reference::Int8MaskBounds(expand_activation_ == 2, expand_scale_, expand_zero_point_,
                                &masks.expand_lower, &masks.expand_upper);
    } else {
      expand_mask->flat<uint8_t>().setZero();
    }
    if (depthwise_activation_ != 0) {
      masks.depthwise = dw_mask->flat<uint8_t>().data();
      reference::Int8MaskBounds(depthwise_activation_ == 2, depthwise_scale_,
                                depthwise_zero_point_, &masks.depthwise_lower,
                                &masks.depthwise_upper);
    } else {
      dw_mask->flat<uint8_t>().setZero();
    }
    std::vector<int8_t> scratch(reference::InvertedResidualScratchBytes(s));
    reference::InvertedResidual(s, expand, depthwise, project, input.flat<int8_t>().data(),
                                output->flat<int8_t>().data(), scratch.data(), &masks);
  }

 private:
  // The stage whose filter, bias and scales are inputs first..first+2.
  static void Stage(::tensorflow::OpKernelContext* ctx, int first, int32_t channels,
                    float in_scale, int32_t in_zero_point, float out_scale,
                    int32_t out_zero_point, int32_t activation, int32_t* quant,
                    reference::Int8Stage* stage) {
    reference::StageMultipliers(in_scale, ctx->input(first + 2).flat<float>().data(),
                                out_scale, channels, quant, quant + channels);
    stage->filter = ctx->input(first).flat<int8_t>().data();
    stage->bias = ctx->input(first + 1).flat<int32_t>().data();
    stage->multiplier = quant;
    stage->shift = quant + channels;
    stage->input_zero_point = in_zero_point;
    stage->output_zero_point = out_zero_point;
    reference::Int8ActivationRange(activation, out_scale, out_zero_point, &stage->act_min,
                                   &stage->act_max);
  }

  bool has_expand_ = true;
  float input_scale_ = 0, expand_scale_ = 0, depthwise_scale_ = 0, output_scale_ = 0;
  int32_t input_zero_point_ = 0, expand_zero_point_ = 0, depthwise_zero_point_ = 0;
  int32_t output_zero_point_ = 0, expand_activation_ = 2, depthwise_activation_ = 2;
  int32_t stride_h_ = 1, stride_w_ = 1, expand_stride_h_ = 1, expand_stride_w_ = 1;
  reference::Padding padding_ = reference::Padding::kSame;
  reference::Padding expand_padding_ = reference::Padding::kSame;
};

REGISTER_KERNEL_BUILDER(Name("TlInvertedResidual").Device(::tensorflow::DEVICE_CPU),
                        InvertedResidualOp);

}  // namespace
}  // namespace tflite_tl
