// TensorFlow custom-op adapters of the loss, pooling, resize and
// normalization kernels (TL_SOFTMAX_XENT, TL_AVGPOOL_GRAD,
// TL_RESIZE_BILINEAR_GRAD, TL_GROUPNORM, TL_GROUPNORM_GRAD,
// TL_BATCHNORM_GRAD, TL_WEIGHT_STANDARDIZE, TL_WEIGHT_STANDARDIZE_GRAD). Functional: trained parameters come out as new tensors
// (the firmware ops update variable tensors in place). TF ops have no
// optional inputs: an absent one is an empty tensor with its has_* attribute
// false.
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
#include "tflm_kernels/reference/activation_quantization.h"
#include "tflm_kernels/reference/avgpool_grad.h"
#include "tflm_kernels/reference/batch_norm_grad.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/group_norm.h"
#include "tflm_kernels/reference/resize_bilinear_grad.h"
#include "tflm_kernels/reference/softmax_xent.h"
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
using ::tensorflow::shape_inference::ShapeHandle;

template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

absl::Status ChannelVector(const Tensor& t, const char* name, int64_t channels) {
  if (t.dims() != 1 || t.dim_size(0) != channels) {
    return Invalid(name, " must be [", channels, "], got ", t.shape().DebugString());
  }
  return absl::OkStatus();
}

absl::Status MaskFor(const Tensor& mask, const Tensor& grad_output) {
  const int64_t bytes = (grad_output.NumElements() + 7) / 8;
  if (mask.dims() != 1 || mask.dim_size(0) != bytes) {
    return Invalid("mask must be [", bytes, "] bytes for ", grad_output.NumElements(),
                   " gradients, got ", mask.shape().DebugString());
  }
  return absl::OkStatus();
}

// An output holding a copy of `source` (the parameter before the step).
absl::Status CopyToOutput(OpKernelContext* ctx, int index, const Tensor& source,
                          Tensor** out) {
  TF_RETURN_IF_ERROR(ctx->allocate_output(index, source.shape(), out));
  if (source.TotalBytes() > 0) std::memcpy((*out)->data(), source.data(), source.TotalBytes());
  return absl::OkStatus();
}

// ---- TL_SOFTMAX_XENT

REGISTER_OP("TlSoftmaxXent")
    .Input("logits: float")
    .Input("labels: int32")
    .Output("loss: float")
    .Output("grad_logits: float")
    .Attr("label_smoothing: float = 0.0")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->Vector(1));
      c->set_output(1, c->input(0));
      return absl::OkStatus();
    })
    .Doc("Mean softmax cross-entropy against (1 - eps) * onehot + eps / K and its "
         "gradient (softmax - targets) / N; zero gradient if anything is non-finite.");

class SoftmaxXentOp : public OpKernel {
 public:
  explicit SoftmaxXentOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("label_smoothing", &label_smoothing_));
    OP_REQUIRES(ctx, label_smoothing_ >= 0.0f && label_smoothing_ < 1.0f,
                Invalid("label_smoothing must be in [0, 1), got ", label_smoothing_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& logits = ctx->input(0);
    const Tensor& labels = ctx->input(1);
    OP_REQUIRES(ctx, logits.dims() == 2 && logits.dim_size(0) > 0 && logits.dim_size(1) > 0,
                Invalid("logits must be [N, K], got ", logits.shape().DebugString()));
    const int32_t n = static_cast<int32_t>(logits.dim_size(0));
    const int32_t k = static_cast<int32_t>(logits.dim_size(1));
    OP_REQUIRES(ctx, labels.dims() == 1 && labels.dim_size(0) == n,
                Invalid("labels must be [", n, "], got ", labels.shape().DebugString()));
    Tensor* loss = nullptr;
    Tensor* grad = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({1}), &loss));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, logits.shape(), &grad));
    const int32_t* l = labels.flat<int32_t>().data();
    const int32_t bad = reference::FirstLabelOutOfRange(l, n, k);
    OP_REQUIRES(ctx, bad < 0,
                Invalid("label ", bad < 0 ? 0 : l[bad], " of sample ", bad,
                        " is outside [0, ", k, ") (K = ", k, " classes)"));
    reference::SoftmaxCrossEntropy(logits.flat<float>().data(), l, n, k, label_smoothing_,
                                   loss->flat<float>().data(), grad->flat<float>().data());
  }

 private:
  float label_smoothing_ = 0.0f;
};
REGISTER_KERNEL_BUILDER(Name("TlSoftmaxXent").Device(DEVICE_CPU), SoftmaxXentOp);

// ---- TL_AVGPOOL_GRAD

REGISTER_OP("TlAvgPoolGrad")
    .Input("grad_output: float")
    .Input("addend: float")
    .Output("grad_input: float")
    .Attr("has_addend: bool = false")
    .Attr("input_height: int >= 1")
    .Attr("input_width: int >= 1")
    .Attr("filter_height: int >= 1")
    .Attr("filter_width: int >= 1")
    .Attr("stride_h: int >= 1 = 1")
    .Attr("stride_w: int >= 1 = 1")
    .Attr("padding: {'SAME', 'VALID'} = 'VALID'")
    .SetShapeFn([](InferenceContext* c) {
      int32_t h, w;
      TF_RETURN_IF_ERROR(c->GetAttr("input_height", &h));
      TF_RETURN_IF_ERROR(c->GetAttr("input_width", &w));
      ShapeHandle grad = c->input(0);
      c->set_output(0, c->MakeShape({c->Dim(grad, 0), h, w, c->Dim(grad, -1)}));
      return absl::OkStatus();
    })
    .Doc("Gradient of AVERAGE_POOL_2D (count excludes padding); a [N, C] "
         "grad_output is global pooling's. With has_addend, addend (the input's "
         "shape) is added to it, as ADD would.");

class AvgPoolGradOp : public OpKernel {
 public:
  explicit AvgPoolGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    for (auto [name, value] : {std::pair<const char*, int32_t*>{"input_height", &h_},
                               {"input_width", &w_}, {"filter_height", &fh_},
                               {"filter_width", &fw_}, {"stride_h", &sh_},
                               {"stride_w", &sw_}}) {
      OP_REQUIRES_OK(ctx, ctx->GetAttr(name, value));
    }
    std::string pad;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padding", &pad));
    padding_ = pad == "SAME" ? reference::Padding::kSame : reference::Padding::kValid;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("has_addend", &has_addend_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& grad_output = ctx->input(0);
    const Tensor& addend = ctx->input(1);
    OP_REQUIRES(ctx, grad_output.dims() == 4 || grad_output.dims() == 2,
                Invalid("grad_output must be NHWC or [N, C], got ",
                        grad_output.shape().DebugString()));
    const int64_t n = grad_output.dim_size(0);
    const int64_t c = grad_output.dim_size(grad_output.dims() - 1);
    const int64_t oh = grad_output.dims() == 4 ? grad_output.dim_size(1) : 1;
    const int64_t ow = grad_output.dims() == 4 ? grad_output.dim_size(2) : 1;
    reference::ConvGeometry g{};
    OP_REQUIRES(ctx,
                reference::MakeConvGeometry(static_cast<int32_t>(n), h_, w_,
                                            static_cast<int32_t>(c), static_cast<int32_t>(c),
                                            fh_, fw_, sh_, sw_, padding_, &g),
                Invalid("empty pooling: input ", h_, "x", w_, ", window ", fh_, "x", fw_));
    OP_REQUIRES(ctx, g.out_h == oh && g.out_w == ow,
                Invalid("grad_output ", grad_output.shape().DebugString(),
                        " is not the pool's output (", g.out_h, "x", g.out_w, ")"));
    const TensorShape shape({n, h_, w_, c});
    OP_REQUIRES(ctx, !has_addend_ || addend.shape() == shape,
                Invalid("addend ", addend.shape().DebugString(), " must be ",
                        shape.DebugString()));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, shape, &out));
    reference::AveragePoolGrad(g, grad_output.flat<float>().data(), out->flat<float>().data(),
                               has_addend_ ? addend.flat<float>().data() : nullptr);
  }

 private:
  bool has_addend_ = false;
  int32_t h_ = 0, w_ = 0, fh_ = 0, fw_ = 0, sh_ = 1, sw_ = 1;
  reference::Padding padding_ = reference::Padding::kValid;
};
REGISTER_KERNEL_BUILDER(Name("TlAvgPoolGrad").Device(DEVICE_CPU), AvgPoolGradOp);

// ---- TL_RESIZE_BILINEAR_GRAD

REGISTER_OP("TlResizeBilinearGrad")
    .Input("grad_output: float")
    .Output("grad_input: float")
    .Attr("input_height: int >= 1")
    .Attr("input_width: int >= 1")
    .Attr("align_corners: bool = false")
    .Attr("half_pixel_centers: bool = true")
    .SetShapeFn([](InferenceContext* c) {
      int32_t h, w;
      TF_RETURN_IF_ERROR(c->GetAttr("input_height", &h));
      TF_RETURN_IF_ERROR(c->GetAttr("input_width", &w));
      ShapeHandle grad;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &grad));
      c->set_output(0, c->MakeShape({c->Dim(grad, 0), h, w, c->Dim(grad, 3)}));
      return absl::OkStatus();
    })
    .Doc("Adjoint of TFLite's float RESIZE_BILINEAR.");

class ResizeBilinearGradOp : public OpKernel {
 public:
  explicit ResizeBilinearGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("input_height", &h_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("input_width", &w_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("align_corners", &align_corners_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("half_pixel_centers", &half_pixel_centers_));
    OP_REQUIRES(ctx, !(align_corners_ && half_pixel_centers_),
                Invalid("align_corners and half_pixel_centers cannot both be true"));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& grad_output = ctx->input(0);
    OP_REQUIRES(ctx, grad_output.dims() == 4 && grad_output.NumElements() > 0,
                Invalid("grad_output must be non-empty NHWC, got ",
                        grad_output.shape().DebugString()));
    const int64_t n = grad_output.dim_size(0), c = grad_output.dim_size(3);
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({n, h_, w_, c}), &out));
    reference::ResizeBilinearGrad(static_cast<int32_t>(n), h_, w_, static_cast<int32_t>(c),
                                  static_cast<int32_t>(grad_output.dim_size(1)),
                                  static_cast<int32_t>(grad_output.dim_size(2)),
                                  align_corners_, half_pixel_centers_,
                                  grad_output.flat<float>().data(), out->flat<float>().data());
  }

 private:
  int32_t h_ = 0, w_ = 0;
  bool align_corners_ = false, half_pixel_centers_ = true;
};
REGISTER_KERNEL_BUILDER(Name("TlResizeBilinearGrad").Device(DEVICE_CPU), ResizeBilinearGradOp);

// ---- TL_GROUPNORM / TL_GROUPNORM_GRAD

absl::Status GroupNormShapeOf(const Tensor& x, int32_t groups, reference::GroupNormShape* s) {
  if (x.dims() != 4 && x.dims() != 2) {
    return Invalid("x must be NHWC or [N, C], got ", x.shape().DebugString());
  }
  const int64_t c = x.dim_size(x.dims() - 1);
  if (c == 0 || c % groups != 0) {
    return Invalid(c, " channels do not split into ", groups, " groups");
  }
  const int64_t spatial = x.dims() == 4 ? x.dim_size(1) * x.dim_size(2) : 1;
  *s = {static_cast<int32_t>(x.dim_size(0)), static_cast<int32_t>(spatial),
        static_cast<int32_t>(c), groups};
  return absl::OkStatus();
}

REGISTER_OP("TlGroupNorm")
    .Input("x: float")
    .Input("gamma: float")
    .Input("beta: float")
    .Output("y: float")
    .Attr("groups: int >= 1")
    .Attr("epsilon: float = 0.001")
    .Attr("has_gamma: bool = true")
    .Attr("has_beta: bool = true")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      return absl::OkStatus();
    })
    .Doc("GroupNormalization forward (tf-keras), NHWC.");

class GroupNormOp : public OpKernel {
 public:
  explicit GroupNormOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("groups", &groups_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("epsilon", &epsilon_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("has_gamma", &has_gamma_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("has_beta", &has_beta_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    reference::GroupNormShape s;
    OP_REQUIRES_OK(ctx, GroupNormShapeOf(x, groups_, &s));
    if (has_gamma_) OP_REQUIRES_OK(ctx, ChannelVector(ctx->input(1), "gamma", s.channels));
    if (has_beta_) OP_REQUIRES_OK(ctx, ChannelVector(ctx->input(2), "beta", s.channels));
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &y));
    std::vector<float> stats(static_cast<size_t>(2 * s.batch * s.groups));
    reference::GroupNorm(s, x.flat<float>().data(),
                         has_gamma_ ? ctx->input(1).flat<float>().data() : nullptr,
                         has_beta_ ? ctx->input(2).flat<float>().data() : nullptr, epsilon_,
                         stats.data(), y->flat<float>().data());
  }

 private:
  int32_t groups_ = 1;
  float epsilon_ = 1e-3f;
  bool has_gamma_ = true, has_beta_ = true;
};
REGISTER_KERNEL_BUILDER(Name("TlGroupNorm").Device(DEVICE_CPU), GroupNormOp);

// Attributes shared by the two norm gradients: which optional inputs exist
// and which parameters are trained.
#define TL_NORM_GRAD_ATTRS                                                  \
  Attr("learning_rate: float = 0.0")                                        \
      .Attr("has_mask: bool = false")                                       \
      .Attr("has_gamma: bool = false")                                      \
      .Attr("train_gamma: bool = false")                                    \
      .Attr("train_beta: bool = false")

struct NormGradAttrs {
  float learning_rate = 0.0f;
  bool has_mask = false, has_gamma = false, train_gamma = false, train_beta = false;
  void Read(OpKernelConstruction* ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("learning_rate", &learning_rate));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("has_mask", &has_mask));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("has_gamma", &has_gamma));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("train_gamma", &train_gamma));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("train_beta", &train_beta));
    OP_REQUIRES(ctx, has_gamma || !train_gamma, Invalid("train_gamma needs gamma"));
  }
};

// Outputs 0..2 (grad_input, new_gamma, new_beta) and the kernel's view of
// them; gamma/beta are inputs `gamma_index` and `gamma_index + 1`.
absl::Status NormGradOutputsFor(OpKernelContext* ctx, const NormGradAttrs& a,
                                const Tensor& grad_output, int gamma_index, int64_t channels,
                                reference::NormGradOutputs* out) {
  const Tensor& gamma = ctx->input(gamma_index);
  const Tensor& beta = ctx->input(gamma_index + 1);
  if (a.has_gamma) TF_RETURN_IF_ERROR(ChannelVector(gamma, "gamma", channels));
  if (a.train_beta) TF_RETURN_IF_ERROR(ChannelVector(beta, "beta", channels));
  if (a.has_mask) TF_RETURN_IF_ERROR(MaskFor(ctx->input(1), grad_output));
  Tensor* grad_input = nullptr;
  Tensor* new_gamma = nullptr;
  Tensor* new_beta = nullptr;
  TF_RETURN_IF_ERROR(ctx->allocate_output(0, grad_output.shape(), &grad_input));
  TF_RETURN_IF_ERROR(CopyToOutput(ctx, 1, gamma, &new_gamma));
  TF_RETURN_IF_ERROR(CopyToOutput(ctx, 2, beta, &new_beta));
  out->grad_input = grad_input->flat<float>().data();
  out->gamma = a.train_gamma ? new_gamma->flat<float>().data() : nullptr;
  out->beta = a.train_beta ? new_beta->flat<float>().data() : nullptr;
  out->learning_rate = a.learning_rate;
  return absl::OkStatus();
}

REGISTER_OP("TlGroupNormGrad")
    .Input("grad_output: float")
    .Input("mask: uint8")
    .Input("x: float")
    .Input("gamma: float")
    .Input("beta: float")
    .Output("grad_input: float")
    .Output("new_gamma: float")
    .Output("new_beta: float")
    .Attr("groups: int >= 1")
    .Attr("epsilon: float = 0.001")
    .TL_NORM_GRAD_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(2));
      c->set_output(1, c->input(3));
      c->set_output(2, c->input(4));
      return absl::OkStatus();
    })
    .Doc("GroupNormalization backward: dx (with gamma before the step) and one SGD "
         "step of the trained gamma / beta.");

class GroupNormGradOp : public OpKernel {
 public:
  explicit GroupNormGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("groups", &groups_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("epsilon", &epsilon_));
    attrs_.Read(ctx);
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& grad_output = ctx->input(0);
    const Tensor& x = ctx->input(2);
    reference::GroupNormShape s;
    OP_REQUIRES_OK(ctx, GroupNormShapeOf(x, groups_, &s));
    OP_REQUIRES(ctx, grad_output.shape() == x.shape(),
                Invalid("grad_output ", grad_output.shape().DebugString(),
                        " must have x's shape ", x.shape().DebugString()));
    reference::NormGradOutputs out{};
    OP_REQUIRES_OK(ctx, NormGradOutputsFor(ctx, attrs_, grad_output, 3, s.channels, &out));
    std::vector<float> stats(static_cast<size_t>(2 * s.batch * s.groups));
    reference::GroupNormGrad(
        s, grad_output.flat<float>().data(),
        attrs_.has_mask ? ctx->input(1).flat<uint8_t>().data() : nullptr,
        x.flat<float>().data(), attrs_.has_gamma ? ctx->input(3).flat<float>().data() : nullptr,
        epsilon_, stats.data(), out);
  }

 private:
  int32_t groups_ = 1;
  float epsilon_ = 1e-3f;
  NormGradAttrs attrs_;
};
REGISTER_KERNEL_BUILDER(Name("TlGroupNormGrad").Device(DEVICE_CPU), GroupNormGradOp);

// ---- TL_BATCHNORM_GRAD

REGISTER_OP("TlBatchNormGrad")
    .Input("grad_output: float")
    .Input("mask: uint8")
    .Input("x: T")
    .Input("mean: float")
    .Input("inv_std: float")
    .Input("gamma: float")
    .Input("beta: float")
    .Output("grad_input: float")
    .Output("new_gamma: float")
    .Output("new_beta: float")
    .Attr("T: {float, int8} = DT_FLOAT")
    .Attr("input_scale: float = 1.0")
    .Attr("input_zero_point: int = 0")
    .TL_NORM_GRAD_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->input(5));
      c->set_output(2, c->input(6));
      return absl::OkStatus();
    })
    .Doc("Backward of a batch norm with frozen statistics: dx = dy * gamma * inv_std "
         "and one SGD step of the trained gamma / beta (x, mean needed for gamma).");

template <typename InputT>
class BatchNormGradOp : public OpKernel {
 public:
  explicit BatchNormGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    attrs_.Read(ctx);
    if (std::is_same<InputT, int8_t>::value) {
      OP_REQUIRES_OK(ctx, ctx->GetAttr("input_scale", &quant_.scale));
      OP_REQUIRES_OK(ctx, ctx->GetAttr("input_zero_point", &quant_.zero_point));
      OP_REQUIRES(ctx, quant_.scale > 0.0f,
                  Invalid("input_scale must be positive, got ", quant_.scale));
    }
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& grad_output = ctx->input(0);
    OP_REQUIRES(ctx, grad_output.dims() >= 1 && grad_output.NumElements() > 0,
                Invalid("grad_output must be non-empty [..., C]"));
    const int64_t channels = grad_output.dim_size(grad_output.dims() - 1);
    const int32_t rows = static_cast<int32_t>(grad_output.NumElements() / channels);
    OP_REQUIRES_OK(ctx, ChannelVector(ctx->input(4), "inv_std", channels));
    const InputT* x = nullptr;
    const float* mean = nullptr;
    if (attrs_.train_gamma) {
      OP_REQUIRES(ctx, ctx->input(2).shape() == grad_output.shape(),
                  Invalid("a trained gamma needs x with grad_output's shape, got ",
                          ctx->input(2).shape().DebugString()));
      OP_REQUIRES_OK(ctx, ChannelVector(ctx->input(3), "mean", channels));
      x = ctx->input(2).flat<InputT>().data();
      mean = ctx->input(3).flat<float>().data();
    }
    reference::NormGradOutputs out{};
    OP_REQUIRES_OK(ctx, NormGradOutputsFor(ctx, attrs_, grad_output, 5, channels, &out));
    reference::BatchNormGrad<InputT>(
        grad_output.flat<float>().data(),
        attrs_.has_mask ? ctx->input(1).flat<uint8_t>().data() : nullptr, x, quant_, mean,
        ctx->input(4).flat<float>().data(),
        attrs_.has_gamma ? ctx->input(5).flat<float>().data() : nullptr, rows,
        static_cast<int32_t>(channels), out);
  }

 private:
  NormGradAttrs attrs_;
  reference::ActivationQuantization quant_ = reference::kNoQuantization;
};
REGISTER_KERNEL_BUILDER(Name("TlBatchNormGrad").Device(DEVICE_CPU).TypeConstraint<float>("T"),
                        BatchNormGradOp<float>);
REGISTER_KERNEL_BUILDER(Name("TlBatchNormGrad").Device(DEVICE_CPU).TypeConstraint<int8_t>("T"),
                        BatchNormGradOp<int8_t>);

// ---- TL_WEIGHT_STANDARDIZE / TL_WEIGHT_STANDARDIZE_GRAD

// w as [out_channels, fan_in]: OHWI [Co, kh, kw, Ci] or [Co, Ci].
absl::Status FilterRows(const Tensor& w, int32_t* out_channels, int32_t* fan_in) {
  if ((w.dims() != 4 && w.dims() != 2) || w.NumElements() == 0) {
    return Invalid("w must be a non-empty OHWI [Co, kh, kw, Ci] (or [Co, Ci]) filter, got ",
                   w.shape().DebugString());
  }
  *out_channels = static_cast<int32_t>(w.dim_size(0));
  *fan_in = static_cast<int32_t>(w.NumElements() / w.dim_size(0));
  return absl::OkStatus();
}

REGISTER_OP("TlWeightStandardize")
    .Input("w: float")
    .Output("w_hat: float")
    .Attr("epsilon: float = 0.00001")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      return absl::OkStatus();
    })
    .Doc("Weight standardisation of an OHWI filter per output channel.");

class WeightStandardizeOp : public OpKernel {
 public:
  explicit WeightStandardizeOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("epsilon", &epsilon_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& w = ctx->input(0);
    int32_t out_channels = 0, fan_in = 0;
    OP_REQUIRES_OK(ctx, FilterRows(w, &out_channels, &fan_in));
    Tensor* w_hat = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, w.shape(), &w_hat));
    reference::WeightStandardize(w.flat<float>().data(), out_channels, fan_in, epsilon_,
                                 w_hat->flat<float>().data());
  }

 private:
  float epsilon_ = 1e-5f;
};
REGISTER_KERNEL_BUILDER(Name("TlWeightStandardize").Device(DEVICE_CPU), WeightStandardizeOp);

REGISTER_OP("TlWeightStandardizeGrad")
    .Input("w: float")
    .Input("grad_w_hat: float")
    .Output("grad_w: float")
    .Attr("epsilon: float = 0.00001")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      return absl::OkStatus();
    })
    .Doc("Vector-Jacobian product of TlWeightStandardize.");

class WeightStandardizeGradOp : public OpKernel {
 public:
  explicit WeightStandardizeGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("epsilon", &epsilon_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& w = ctx->input(0);
    const Tensor& grad_w_hat = ctx->input(1);
    int32_t out_channels = 0, fan_in = 0;
    OP_REQUIRES_OK(ctx, FilterRows(w, &out_channels, &fan_in));
    OP_REQUIRES(ctx, grad_w_hat.shape() == w.shape(),
                Invalid("grad_w_hat must have w's shape ", w.shape().DebugString(), ", got ",
                        grad_w_hat.shape().DebugString()));
    Tensor* grad_w = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, w.shape(), &grad_w));
    reference::WeightStandardizeGrad(w.flat<float>().data(), grad_w_hat.flat<float>().data(),
                                     out_channels, fan_in, epsilon_,
                                     grad_w->flat<float>().data());
  }

 private:
  float epsilon_ = 1e-5f;
};
REGISTER_KERNEL_BUILDER(Name("TlWeightStandardizeGrad").Device(DEVICE_CPU),
                        WeightStandardizeGradOp);

}  // namespace
}  // namespace tflite_tl
