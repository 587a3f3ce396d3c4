// TensorFlow custom-op adapter of TL_INVERTED_RESIDUAL_INPUT_GRAD
// (reference/inverted_residual_input_grad.h): the input gradient through a
// frozen int8 [expand] -> depthwise -> project block, streamed by rows. The
// per-channel scales TFLM reads from the filters' quantization are inputs
// here; an absent mask or expand conv is an empty tensor.
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/inverted_residual_input_grad.h"

namespace tflite_tl {
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;

template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

REGISTER_OP("TlInvertedResidualInputGrad")
    .Input("grad_output: float")
    .Input("grad_output_mask: uint8")
    .Input("project_filter: int8")
    .Input("project_scales: float")
    .Input("depthwise_filter: int8")
    .Input("depthwise_scales: float")
    .Input("depthwise_mask: uint8")
    .Input("expand_filter: int8")
    .Input("expand_scales: float")
    .Input("expand_mask: uint8")
    .Output("grad_input: float")
    .Attr("input_height: int >= 1")
    .Attr("input_width: int >= 1")
    .Attr("stride_h: int >= 1 = 1")
    .Attr("stride_w: int >= 1 = 1")
    .Attr("padding: {'SAME', 'VALID'} = 'SAME'")
    .SetShapeFn([](::tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->UnknownShapeOfRank(4));
      return absl::OkStatus();
    })
    .Doc("TL_INVERTED_RESIDUAL_INPUT_GRAD: grad_input of a frozen int8 block "
         "[1x1 expand conv] -> depthwise -> 1x1 project from the project "
         "output's gradient, bit-identical to TlConvInputGrad (project) -> "
         "TlDepthwiseInputGrad -> TlConvInputGrad (expand) with their masks; "
         "empty masks / expand tensors are absent.");

// An empty tensor is an absent mask; otherwise it must hold `elements` bits.
absl::Status OptionalMask(const Tensor& t, const char* name, int64_t elements,
                          const uint8_t** mask) {
  *mask = nullptr;
  if (t.NumElements() == 0) return absl::OkStatus();
  if (t.dims() != 1 || t.dim_size(0) != (elements + 7) / 8) {
    return Invalid(name, " must be [", (elements + 7) / 8, "] bytes, got ",
                   t.shape().DebugString());
  }
  *mask = t.flat<uint8_t>().data();
  return absl::OkStatus();
}

absl::Status CheckFilter(const Tensor& filter, const Tensor& scales, const char* name,
                         int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                         int64_t channels) {
  if (filter.dims() != 4 || filter.dim_size(0) != d0 || filter.dim_size(1) != d1 ||
      filter.dim_size(2) != d2 || filter.dim_size(3) != d3) {
    return Invalid(name, " must be [", d0, ", ", d1, ", ", d2, ", ", d3, "], got ",
                   filter.shape().DebugString());
  }
  if (scales.dims() != 1 || scales.dim_size(0) != channels) {
    return Invalid(name, " scales must be [", channels, "], got ",
                   scales.shape().DebugString());
  }
  return absl::OkStatus();
}

class InvertedResidualInputGradOp : public OpKernel {
 public:
  explicit InvertedResidualInputGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("input_height", &in_h_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("input_width", &in_w_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("stride_h", &stride_h_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("stride_w", &stride_w_));
    std::string pad;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padding", &pad));
    padding_ = pad == "SAME" ? reference::Padding::kSame : reference::Padding::kValid;
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& dy = ctx->input(0);
    const Tensor& dw = ctx->input(4);
    const Tensor& expand = ctx->input(7);
    OP_REQUIRES(ctx, dy.dims() == 4,
                Invalid("grad_output must be 4-D NHWC, got ", dy.shape().DebugString()));
    OP_REQUIRES(ctx, dw.dims() == 4 && dw.dim_size(0) == 1,
                Invalid("depthwise_filter must be [1, kh, kw, E], got ",
                        dw.shape().DebugString()));
    reference::InvertedResidualInputGradShape s{};
    s.batch = static_cast<int32_t>(dy.dim_size(0));
    s.in_h = in_h_;
    s.in_w = in_w_;
    s.expanded_c = static_cast<int32_t>(dw.dim_size(3));
    s.has_expand = expand.NumElements() != 0;
    s.in_c = s.has_expand ? static_cast<int32_t>(expand.dim_size(expand.dims() - 1))
                          : s.expanded_c;
    s.out_c = static_cast<int32_t>(dy.dim_size(3));
    s.filter_h = static_cast<int32_t>(dw.dim_size(1));
    s.filter_w = static_cast<int32_t>(dw.dim_size(2));
    s.stride_h = stride_h_;
    s.stride_w = stride_w_;
    s.out_h = reference::ConvOutputSize(padding_, s.in_h, s.filter_h, s.stride_h);
    s.out_w = reference::ConvOutputSize(padding_, s.in_w, s.filter_w, s.stride_w);
    OP_REQUIRES(ctx, s.out_h == dy.dim_size(1) && s.out_w == dy.dim_size(2),
                Invalid("grad_output ", dy.shape().DebugString(),
                        " is not the block's output for an input of ", in_h_, "x",
                        in_w_));
    s.pad_top = reference::ConvPaddingBefore(padding_, s.in_h, s.filter_h, s.stride_h,
                                             s.out_h);
    s.pad_left = reference::ConvPaddingBefore(padding_, s.in_w, s.filter_w, s.stride_w,
                                              s.out_w);
    reference::ChooseInvertedResidualGradOrder(&s);
    const int64_t e_c = s.expanded_c;
    OP_REQUIRES_OK(ctx, CheckFilter(ctx->input(2), ctx->input(3), "project_filter",
                                    s.out_c, 1, 1, e_c, s.out_c));
    OP_REQUIRES_OK(ctx, CheckFilter(dw, ctx->input(5), "depthwise_filter", 1, s.filter_h,
                                    s.filter_w, e_c, e_c));
    if (s.has_expand) {
      OP_REQUIRES_OK(ctx, CheckFilter(expand, ctx->input(8), "expand_filter", e_c, 1, 1,
                                      s.in_c, e_c));
    }
    const int64_t out_pixels = static_cast<int64_t>(s.batch) * s.out_h * s.out_w;
    reference::InvertedResidualGradMasks masks{};
    OP_REQUIRES_OK(ctx, OptionalMask(ctx->input(1), "grad_output_mask",
                                     out_pixels * s.out_c, &masks.grad_output));
    OP_REQUIRES_OK(ctx, OptionalMask(ctx->input(6), "depthwise_mask", out_pixels * e_c,
                                     &masks.depthwise));
    OP_REQUIRES_OK(ctx, OptionalMask(ctx->input(9), "expand_mask",
                                     static_cast<int64_t>(s.batch) * s.in_h * s.in_w * e_c,
                                     &masks.expand));
    OP_REQUIRES(ctx, s.has_expand || masks.expand == nullptr,
                Invalid("expand_mask needs an expand_filter"));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({s.batch, s.in_h, s.in_w, s.in_c}), &out));
    std::vector<float> scratch(
        static_cast<size_t>(reference::InvertedResidualInputGradScratchFloats(s)));
    const reference::Int8Filter expand_filter = {
        s.has_expand ? expand.flat<int8_t>().data() : nullptr,
        s.has_expand ? ctx->input(8).flat<float>().data() : nullptr};
    reference::InvertedResidualInputGrad(
        s, dy.flat<float>().data(),
        {ctx->input(2).flat<int8_t>().data(), ctx->input(3).flat<float>().data()},
        {dw.flat<int8_t>().data(), ctx->input(5).flat<float>().data()}, expand_filter,
        masks, out->flat<float>().data(), scratch.data());
  }

 private:
  int32_t in_h_ = 0, in_w_ = 0, stride_h_ = 1, stride_w_ = 1;
  reference::Padding padding_ = reference::Padding::kSame;
};
REGISTER_KERNEL_BUILDER(Name("TlInvertedResidualInputGrad").Device(::tensorflow::DEVICE_CPU),
                        InvertedResidualInputGradOp);

}  // namespace
}  // namespace tflite_tl
