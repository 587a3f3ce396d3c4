// TensorFlow custom-op adapters of TL_CONV_UPDATE / TL_DEPTHWISE_UPDATE
// (reference/conv_update.h) and TL_WS_CONV_UPDATE (reference/
// ws_conv_update.h, with its fused input gradient from the raw filter). Functional: the updated parameters come out as
// new tensors (the firmware op updates its variable tensors in place; the
// arithmetic is the same). TF ops have no optional inputs: an absent one is
// passed as an empty tensor with its has_* attribute false. The shape rules
// (channel-subset input, FULLY_CONNECTED rank-2 tensors, group count) are
// those of the TFLM adapter (tflm/parameter_update.cc).
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/activation_quantization.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/conv_update.h"
#include "tflm_kernels/reference/ws_conv_update.h"

namespace tflite_tl {
namespace {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::shape_inference::InferenceContext;

template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

// [N, C] as [N, 1, 1, C]; rank 4 as is.
absl::Status Dims4(const Tensor& t, const char* name, int32_t d[4]) {
  if (t.dims() == 4) {
    for (int i = 0; i < 4; ++i) d[i] = static_cast<int32_t>(t.dim_size(i));
    return absl::OkStatus();
  }
  if (t.dims() == 2) {
    d[0] = static_cast<int32_t>(t.dim_size(0));
    d[1] = d[2] = 1;
    d[3] = static_cast<int32_t>(t.dim_size(1));
    return absl::OkStatus();
  }
  return Invalid(name, " must be 4-D (or 2-D for a fully connected layer), got ",
                 t.shape().DebugString());
}

absl::Status VectorOf(const Tensor& t, const char* name, int64_t size) {
  if (t.dims() != 1 || t.dim_size(0) != size) {
    return Invalid(name, " must be [", size, "], got ", t.shape().DebugString());
  }
  return absl::OkStatus();
}

absl::Status PositiveScales(const Tensor& t, const char* name, int64_t size) {
  TF_RETURN_IF_ERROR(VectorOf(t, name, size));
  for (int64_t i = 0; i < size; ++i) {
    if (!(t.flat<float>()(i) > 0.0f)) return Invalid(name, "[", i, "] is not positive");
  }
  return absl::OkStatus();
}

enum Input {
  kGradOutput, kMask, kInput, kChannels, kFilter, kFilterQ, kFilterQScales, kBias,
  kBiasQ, kBiasQScales
};

#define TL_UPDATE_OP_SIGNATURE                                               \
  Input("grad_output: float")                                                \
      .Input("mask: uint8")                                                  \
      .Input("input: T")                                                     \
      .Input("channels: int32")                                              \
      .Input("filter: float")                                                \
      .Input("filter_q: int8")                                               \
      .Input("filter_q_scales: float")                                       \
      .Input("bias: float")                                                  \
      .Input("bias_q: int32")                                                \
      .Input("bias_q_scales: float")                                         \
      .Output("new_filter: float")                                           \
      .Output("new_filter_q: int8")                                          \
      .Output("new_bias: float")                                             \
      .Output("new_bias_q: int32")                                           \
      .Attr("T: {float, int8} = DT_FLOAT")                                   \
      .Attr("input_scale: float = 1.0")                                      \
      .Attr("input_zero_point: int = 0")                                     \
      .Attr("has_mask: bool = false")                                        \
      .Attr("has_input: bool = false")                                       \
      .Attr("has_channels: bool = false")                                    \
      .Attr("has_filter: bool = false")                                      \
      .Attr("has_filter_q: bool = false")                                    \
      .Attr("has_bias: bool = false")                                        \
      .Attr("has_bias_q: bool = false")                                      \
      .Attr("stride_h: int >= 1 = 1")                                        \
      .Attr("stride_w: int >= 1 = 1")                                        \
      .Attr("padding: {'SAME', 'VALID'} = 'SAME'")                           \
      .Attr("learning_rate: float")                                          \
      .Attr("qas: bool = true")                                              \
      .SetShapeFn([](InferenceContext* c) {                                  \
        c->set_output(0, c->input(kFilter));                                 \
        c->set_output(1, c->input(kFilterQ));                                \
        c->set_output(2, c->input(kBias));                                   \
        c->set_output(3, c->input(kBiasQ));                                  \
        return absl::OkStatus();                                             \
      })

REGISTER_OP("TlConvUpdate")
    .TL_UPDATE_OP_SIGNATURE
    .Attr("channel_axis: int = 0")
    .Doc("TL_CONV_UPDATE: one SGD step of a Conv2D / fully connected layer's "
         "trained parameters (chosen channels of the filter, its int8 copy, the "
         "bias and its int32 copy); returns the updated tensors.");

REGISTER_OP("TlDepthwiseUpdate")
    .TL_UPDATE_OP_SIGNATURE
    .Doc("TL_DEPTHWISE_UPDATE: TlConvUpdate for DepthwiseConv2D with depth "
         "multiplier 1 (filter [1, kh, kw, C]).");

template <typename InputT, bool kDepthwise>
class UpdateOp : public OpKernel {
 public:
  explicit UpdateOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    for (const char* name : {"has_mask", "has_input", "has_channels", "has_filter",
                             "has_filter_q", "has_bias", "has_bias_q"}) {
      bool value = false;
      OP_REQUIRES_OK(ctx, ctx->GetAttr(name, &value));
      has_.push_back(value);
    }
    OP_REQUIRES_OK(ctx, ctx->GetAttr("stride_h", &stride_h_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("stride_w", &stride_w_));
    std::string pad;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padding", &pad));
    padding_ = pad == "SAME" ? reference::Padding::kSame : reference::Padding::kValid;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("learning_rate", &sgd_.learning_rate));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("qas", &sgd_.qas));
    if (!kDepthwise) {
      OP_REQUIRES_OK(ctx, ctx->GetAttr("channel_axis", &axis_));
      OP_REQUIRES(ctx, axis_ == 0 || axis_ == 1,
                  Invalid("channel_axis must be 0 or 1, got ", axis_));
    }
    if (std::is_same<InputT, int8_t>::value) {
      OP_REQUIRES_OK(ctx, ctx->GetAttr("input_scale", &quant_.scale));
      OP_REQUIRES_OK(ctx, ctx->GetAttr("input_zero_point", &quant_.zero_point));
      OP_REQUIRES(ctx, quant_.scale > 0.0f,
                  Invalid("input_scale must be positive, got ", quant_.scale));
    }
  }

  void Compute(OpKernelContext* ctx) override {
    const bool has_mask = has_[0], has_input = has_[1], has_channels = has_[2];
    const bool has_filter = has_[3], has_filter_q = has_[4], has_bias = has_[5],
               has_bias_q = has_[6];
    const Tensor& grad_output = ctx->input(kGradOutput);
    int32_t go[4];
    OP_REQUIRES_OK(ctx, Dims4(grad_output, "grad_output", go));
    OP_REQUIRES(ctx, go[3] > 0, Invalid("grad_output has no channels"));
    const int64_t elements = grad_output.NumElements();
    if (has_mask) {
      OP_REQUIRES_OK(ctx, VectorOf(ctx->input(kMask), "mask", (elements + 7) / 8));
    }
    OP_REQUIRES(ctx, !has_filter_q || has_filter,
                Invalid("filter_q needs its float master as filter"));
    OP_REQUIRES(ctx, !has_bias_q || has_bias,
                Invalid("bias_q needs its float master as bias"));
    OP_REQUIRES(ctx, has_filter || has_bias,
                Invalid("nothing to update: give a filter or a bias"));
    OP_REQUIRES(ctx, has_filter || (!has_input && !has_channels),
                Invalid("input and channels only serve a trained filter; a bias is "
                        "updated at every channel"));
    // Outputs start as copies of the parameters; the kernel updates them.
    Tensor* out[4] = {nullptr, nullptr, nullptr, nullptr};
    const int sources[4] = {kFilter, kFilterQ, kBias, kBiasQ};
    for (int i = 0; i < 4; ++i) {
      const Tensor& source = ctx->input(sources[i]);
      OP_REQUIRES_OK(ctx, ctx->allocate_output(i, source.shape(), &out[i]));
      if (source.TotalBytes() > 0) {
        std::memcpy(out[i]->data(), source.data(), source.TotalBytes());
      }
    }
    reference::TrainedParameters p{};
    if (has_bias) {
      OP_REQUIRES_OK(ctx, VectorOf(ctx->input(kBias), "bias", go[3]));
      p.bias = out[2]->flat<float>().data();
    }
    if (has_bias_q) {
      OP_REQUIRES_OK(ctx, VectorOf(ctx->input(kBiasQ), "bias_q", go[3]));
      OP_REQUIRES_OK(ctx, PositiveScales(ctx->input(kBiasQScales), "bias_q_scales", go[3]));
      p.bias_q = out[3]->flat<int32_t>().data();
      p.bias_scales = ctx->input(kBiasQScales).flat<float>().data();
    }
    const float* dy = grad_output.flat<float>().data();
    const uint8_t* mask = has_mask ? ctx->input(kMask).flat<uint8_t>().data() : nullptr;
    if (!has_filter) {
      reference::BiasUpdate(dy, mask, static_cast<int32_t>(elements / go[3]), go[3], sgd_, p);
      return;
    }
    OP_REQUIRES(ctx, has_input, Invalid("training the filter needs the saved layer input"));
    const Tensor& input = ctx->input(kInput);
    const Tensor& full = ctx->input(has_filter_q ? kFilterQ : kFilter);
    int32_t x[4], f[4], m[4];
    OP_REQUIRES_OK(ctx, Dims4(input, "input", x));
    OP_REQUIRES_OK(ctx, Dims4(full, has_filter_q ? "filter_q" : "filter", f));
    OP_REQUIRES_OK(ctx, Dims4(ctx->input(kFilter), "filter", m));
    OP_REQUIRES(ctx, x[0] == go[0], Invalid("input batch ", x[0], " != grad_output's ", go[0]));
    OP_REQUIRES(ctx, kDepthwise ? (f[0] == 1 && f[3] == go[3]) : (f[0] == go[3] && f[3] > 0),
                Invalid("filter shape ", full.shape().DebugString(),
                        " does not fit grad_output's ", go[3], " channels"));
    const Tensor& channels = ctx->input(kChannels);
    int32_t num_listed = -1;
    if (has_channels) {
      OP_REQUIRES(ctx, channels.dims() == 1, Invalid("channels must be 1-D"));
      num_listed = static_cast<int32_t>(channels.dim_size(0));
    }
    const int32_t group_in = kDepthwise ? go[3] : f[3];
    const bool subset = (kDepthwise || axis_ == 1) && num_listed >= 0 && x[3] == num_listed &&
                        num_listed < group_in;
    const int32_t in_c = subset ? group_in : x[3];
    OP_REQUIRES(ctx, kDepthwise ? in_c == go[3] : in_c % f[3] == 0,
                Invalid("input has ", x[3], " channels, which fits neither the filter nor "
                        "the chosen channels"));
    reference::ConvGeometry g{};
    OP_REQUIRES(ctx,
                reference::MakeConvGeometry(x[0], x[1], x[2], in_c, go[3], f[1], f[2],
                                            stride_h_, stride_w_, padding_, &g,
                                            kDepthwise ? 1 : in_c / f[3]),
                Invalid("empty or inconsistent convolution"));
    OP_REQUIRES(ctx, g.out_h == go[1] && g.out_w == go[2],
                Invalid("grad_output ", grad_output.shape().DebugString(),
                        " is not the convolution's output (", g.out_h, "x", g.out_w, ")"));
    const int32_t axis_size = axis_ == 1 ? in_c : go[3];
    const int32_t k = num_listed >= 0 ? num_listed : axis_size;
    int32_t want[4] = {f[0], f[1], f[2], f[3]};
    if (has_filter_q) {
      if (kDepthwise || axis_ == 1) {
        want[3] = k;
      } else {
        want[0] = k;
      }
      OP_REQUIRES_OK(ctx, PositiveScales(ctx->input(kFilterQScales), "filter_q_scales", go[3]));
      p.filter_q = out[1]->flat<int8_t>().data();
      p.filter_scales = ctx->input(kFilterQScales).flat<float>().data();
    }
    OP_REQUIRES(ctx, m[0] == want[0] && m[1] == want[1] && m[2] == want[2] && m[3] == want[3],
                Invalid("filter is ", ctx->input(kFilter).shape().DebugString(), ", expected [",
                        want[0], ",", want[1], ",", want[2], ",", want[3], "]"));
    p.filter = out[0]->flat<float>().data();
    const int32_t* list = has_channels ? channels.flat<int32_t>().data() : nullptr;
    const InputT* in = input.flat<InputT>().data();
    const bool ok =
        kDepthwise
            ? reference::DepthwiseUpdate<InputT>(g, dy, mask, in, quant_, x[3], list, k, sgd_, p)
            : reference::ConvUpdate<InputT>(g, dy, mask, in, quant_, x[3], list, k, axis_, sgd_,
                                            p);
    const int32_t bad = reference::FirstChannelOutOfRange(list, k, axis_size);
    OP_REQUIRES(ctx, ok,
                Invalid("channel ", bad < 0 ? 0 : list[bad], " (position ", bad,
                        ") is outside [0, ", axis_size, ")"));
  }

 private:
  std::vector<bool> has_;
  int32_t stride_h_ = 1, stride_w_ = 1, axis_ = 0;
  reference::Padding padding_ = reference::Padding::kSame;
  reference::SgdOptions sgd_{0.0f, true};
  reference::ActivationQuantization quant_ = reference::kNoQuantization;
};

REGISTER_KERNEL_BUILDER(Name("TlConvUpdate").Device(DEVICE_CPU).TypeConstraint<float>("T"),
                        (UpdateOp<float, false>));
REGISTER_KERNEL_BUILDER(Name("TlConvUpdate").Device(DEVICE_CPU).TypeConstraint<int8_t>("T"),
                        (UpdateOp<int8_t, false>));
REGISTER_KERNEL_BUILDER(
    Name("TlDepthwiseUpdate").Device(DEVICE_CPU).TypeConstraint<float>("T"),
    (UpdateOp<float, true>));
REGISTER_KERNEL_BUILDER(
    Name("TlDepthwiseUpdate").Device(DEVICE_CPU).TypeConstraint<int8_t>("T"),
    (UpdateOp<int8_t, true>));

REGISTER_OP("TlWsConvUpdate")
    .Input("grad_output: float")
    .Input("mask: uint8")
    .Input("inputs: float")
    .Input("weights: float")
    .Input("bias: float")
    .Output("new_weights: float")
    .Output("new_bias: float")
    .Output("grad_input: float")
    .Attr("has_mask: bool = false")
    .Attr("has_bias: bool = false")
    .Attr("input_grad: bool = false")
    .Attr("epsilon: float")
    .Attr("learning_rate: float")
    .Attr("stride_h: int >= 1 = 1")
    .Attr("stride_w: int >= 1 = 1")
    .Attr("padding: {'SAME', 'VALID'} = 'SAME'")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(3));
      c->set_output(1, c->input(4));
      bool input_grad = false;
      TF_RETURN_IF_ERROR(c->GetAttr("input_grad", &input_grad));
      c->set_output(2, input_grad ? c->input(2) : c->Vector(0));
      return absl::OkStatus();
    })
    .Doc("TL_WS_CONV_UPDATE: one SGD step of a weight-standardised conv's raw OHWI "
         "filter (gradient through standardize_kernel) and of its bias; with "
         "input_grad, first the layer's input gradient through the filter "
         "standardised from the raw one (the TFLM op with the raw filter as its "
         "input 8), else an empty grad_input.");

class WsConvUpdateOp : public OpKernel {
 public:
  explicit WsConvUpdateOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("has_mask", &has_mask_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("has_bias", &has_bias_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("input_grad", &input_grad_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("epsilon", &epsilon_));
    OP_REQUIRES(ctx, epsilon_ >= 0.0f, Invalid("epsilon must be >= 0, got ", epsilon_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("learning_rate", &learning_rate_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("stride_h", &stride_h_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("stride_w", &stride_w_));
    std::string pad;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padding", &pad));
    padding_ = pad == "SAME" ? reference::Padding::kSame : reference::Padding::kValid;
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& grad_output = ctx->input(0);
    const Tensor& mask = ctx->input(1);
    const Tensor& input = ctx->input(2);
    const Tensor& weights = ctx->input(3);
    const Tensor& bias = ctx->input(4);
    OP_REQUIRES(ctx, grad_output.dims() == 4 && input.dims() == 4 && weights.dims() == 4,
                Invalid("grad_output, inputs (NHWC) and weights (OHWI) must be 4-D"));
    const int64_t fi = weights.dim_size(3);
    const int64_t groups = fi > 0 ? input.dim_size(3) / fi : 0;
    OP_REQUIRES(ctx, groups > 0 && input.dim_size(3) % fi == 0 &&
                         weights.dim_size(0) % groups == 0 &&
                         weights.dim_size(0) == grad_output.dim_size(3),
                Invalid("weights ", weights.shape().DebugString(), " do not fit inputs ",
                        input.shape().DebugString(), " and grad_output ",
                        grad_output.shape().DebugString()));
    reference::ConvGeometry g{};
    OP_REQUIRES(ctx,
                reference::MakeConvGeometry(
                    static_cast<int32_t>(input.dim_size(0)),
                    static_cast<int32_t>(input.dim_size(1)),
                    static_cast<int32_t>(input.dim_size(2)),
                    static_cast<int32_t>(input.dim_size(3)),
                    static_cast<int32_t>(weights.dim_size(0)),
                    static_cast<int32_t>(weights.dim_size(1)),
                    static_cast<int32_t>(weights.dim_size(2)), stride_h_, stride_w_, padding_,
                    &g, static_cast<int32_t>(groups)) &&
                    g.batch == grad_output.dim_size(0) && g.out_h == grad_output.dim_size(1) &&
                    g.out_w == grad_output.dim_size(2),
                Invalid("grad_output ", grad_output.shape().DebugString(),
                        " is not the convolution's output"));
    if (has_mask_) {
      OP_REQUIRES_OK(ctx, VectorOf(mask, "mask", (grad_output.NumElements() + 7) / 8));
    }
    if (has_bias_) OP_REQUIRES_OK(ctx, VectorOf(bias, "bias", g.out_c));
    Tensor* new_weights = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, weights.shape(), &new_weights));
    std::memcpy(new_weights->flat<float>().data(), weights.flat<float>().data(),
                weights.NumElements() * sizeof(float));
    Tensor* new_bias = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, bias.shape(), &new_bias));
    if (bias.NumElements() > 0) {
      std::memcpy(new_bias->flat<float>().data(), bias.flat<float>().data(),
                  bias.NumElements() * sizeof(float));
    }
    Tensor* grad_input = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            2, input_grad_ ? input.shape() : tensorflow::TensorShape({0}),
                            &grad_input));
    std::vector<float> scratch(
        static_cast<size_t>(reference::StandardizedConvOpScratch(g, input_grad_)));
    if (input_grad_) {
      // Before the step, from the step's starting filter.
      reference::StandardizedConvInputGrad(
          g, grad_output.flat<float>().data(),
          has_mask_ ? mask.flat<uint8_t>().data() : nullptr, weights.flat<float>().data(),
          epsilon_, scratch.data(), grad_input->flat<float>().data());
    }
    reference::StandardizedConvUpdate(
        g, grad_output.flat<float>().data(),
        has_mask_ ? mask.flat<uint8_t>().data() : nullptr, input.flat<float>().data(),
        epsilon_, learning_rate_, new_weights->flat<float>().data(),
        has_bias_ ? new_bias->flat<float>().data() : nullptr, scratch.data());
  }

 private:
  bool has_mask_ = false, has_bias_ = false, input_grad_ = false;
  float epsilon_ = 0.0f, learning_rate_ = 0.0f;
  int32_t stride_h_ = 1, stride_w_ = 1;
  reference::Padding padding_ = reference::Padding::kSame;
};

REGISTER_KERNEL_BUILDER(Name("TlWsConvUpdate").Device(DEVICE_CPU), WsConvUpdateOp);

}  // namespace
}  // namespace tflite_tl
