// Loss, pooling, resize, normalization, weight-standardization, forward depthwise and
// int8 inverted-residual kernels
// against the TF goldens,
// plus what goldens cannot express (rejected labels, non-finite handling,
// adjoint identities).
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "tflm_kernels/reference/avgpool_grad.h"
#include "tflm_kernels/reference/batch_norm_grad.h"
#include "tflm_kernels/reference/conv.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/depthwise_conv.h"
#include "tflm_kernels/reference/group_norm.h"
#include "tflm_kernels/reference/inverted_residual.h"
#include "tflm_kernels/reference/resize_bilinear_grad.h"
#include "tflm_kernels/reference/softmax_xent.h"
#include "tflm_kernels/reference/weight_standardize.h"
#include "tflm_kernels/tests/kernel_tests.h"
#include "tflm_kernels/tests/test_harness.h"

namespace tflite_tl {
namespace testing {
namespace {

using reference::ConvGeometry;
using reference::Padding;

// Equal, or both NaN (a non-finite loss must keep its kind).
bool SameFloat(float a, float b) { return a == b || (std::isnan(a) && std::isnan(b)); }

void TestSoftmaxXent(const std::string& dir) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/softmax_xent.golden")) {
    const auto& logits_t = c.tensor("logits");
    const int32_t n = logits_t.dim(0), k = logits_t.dim(1);
    const auto logits = logits_t.AsFloat();
    const auto labels = c.tensor("labels").As<int32_t>();
    const auto want_grad = c.tensor("expected_grad_logits").AsFloat();
    const float want_loss = c.tensor("expected_loss").AsFloat()[0];
    std::vector<float> grad(want_grad.size(), 3.0f);
    float loss = 0.0f;
    TL_EXPECT(reference::SoftmaxCrossEntropy(logits.data(), labels.data(), n, k,
                                             static_cast<float>(c.param("label_smoothing")),
                                             &loss, grad.data()));
    const std::string what = "softmax_xent/" + c.name;
    if (std::isfinite(want_loss)) {
      TL_EXPECT_CLOSE(std::vector<float>{loss}, std::vector<float>{want_loss}, kRtol,
                      1e-6, what + " loss");
    } else if (!SameFloat(loss, want_loss)) {
      Fail(__FILE__, __LINE__, what + ": loss " + std::to_string(loss) + ", want " +
                                   std::to_string(want_loss));
    }
    TL_EXPECT_CLOSE(grad, want_grad, kRtol, Atol(want_grad), what + " grad");
  }
}

void TestSoftmaxXentRejectsBadLabels() {
  const float logits[] = {1.0f, 2.0f, 3.0f, 4.0f};
  float grad[4] = {7.0f, 7.0f, 7.0f, 7.0f};
  float loss = 7.0f;
  const int32_t too_big[] = {0, 2};
  TL_EXPECT(reference::FirstLabelOutOfRange(too_big, 2, 2) == 1);
  TL_EXPECT(!reference::SoftmaxCrossEntropy(logits, too_big, 2, 2, 0.0f, &loss, grad));
  const int32_t negative[] = {-1, 0};
  TL_EXPECT(!reference::SoftmaxCrossEntropy(logits, negative, 2, 2, 0.0f, &loss, grad));
  TL_EXPECT(loss == 7.0f && grad[0] == 7.0f && grad[3] == 7.0f);  // nothing written
}

void TestSoftmaxXentGradientSumsToZero() {
  // Each row of softmax - t sums to 0 (both are distributions).
  const float logits[] = {0.5f, -1.0f, 3.0f, 2.0f, 2.0f, 2.0f};
  const int32_t labels[] = {2, 0};
  float grad[6];
  float loss = 0.0f;
  TL_EXPECT(reference::SoftmaxCrossEntropy(logits, labels, 2, 3, 0.25f, &loss, grad));
  TL_EXPECT(std::fabs(grad[0] + grad[1] + grad[2]) < 1e-7);
  TL_EXPECT(std::fabs(grad[3] + grad[4] + grad[5]) < 1e-7);
  TL_EXPECT(loss > 0.0f);
}

void TestAvgPoolGrad(const std::string& dir) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/avgpool_grad.golden")) {
    const auto& expected = c.tensor("expected_grad_input");
    const Dims4 go = Nhwc(c.tensor("grad_output"));
    ConvGeometry g{};
    TL_EXPECT(reference::MakeConvGeometry(
        expected.dim(0), expected.dim(1), expected.dim(2), expected.dim(3), expected.dim(3),
        static_cast<int32_t>(c.param("filter_h")), static_cast<int32_t>(c.param("filter_w")),
        static_cast<int32_t>(c.param("stride_h")), static_cast<int32_t>(c.param("stride_w")),
        c.param("padding") != 0 ? Padding::kSame : Padding::kValid, &g));
    TL_EXPECT(g.out_h == go[1] && g.out_w == go[2]);
    const auto grad_output = c.tensor("grad_output").AsFloat();
    const auto want = expected.AsFloat();
    std::vector<float> got(want.size(), 9.0f);
    const bool has_addend = c.has_tensor("addend");
    const auto addend = has_addend ? c.tensor("addend").AsFloat() : std::vector<float>();
    reference::AveragePoolGrad(g, grad_output.data(), got.data(),
                               has_addend ? addend.data() : nullptr);
    TL_EXPECT_CLOSE(got, want, kRtol, Atol(want), "avgpool_grad/" + c.name);
    if (has_addend) {
      // Bit for bit the pool gradient, then a float ADD of the addend.
      std::vector<float> plain(want.size(), 9.0f);
      reference::AveragePoolGrad(g, grad_output.data(), plain.data());
      for (size_t i = 0; i < plain.size(); ++i) plain[i] = addend[i] + plain[i];
      TL_EXPECT(got == plain);
    }
  }
}

void TestResizeBilinearGrad(const std::string& dir) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/resize_bilinear_grad.golden")) {
    const auto& go = c.tensor("grad_output");
    const auto& expected = c.tensor("expected_grad_input");
    const auto grad_output = go.AsFloat();
    const auto want = expected.AsFloat();
    std::vector<float> got(want.size(), 9.0f);
    reference::ResizeBilinearGrad(expected.dim(0), expected.dim(1), expected.dim(2),
                                  expected.dim(3), go.dim(1), go.dim(2),
                                  c.param("align_corners") != 0,
                                  c.param("half_pixel_centers") != 0, grad_output.data(),
                                  got.data());
    TL_EXPECT_CLOSE(got, want, kRtol, Atol(want), "resize_bilinear_grad/" + c.name);
  }
}

// <A x, y> == <x, A^T y>: the gradient is the adjoint of a forward written
// with TFLite's reference arithmetic (here in double, as an independent
// forward), for every option combination TFLite accepts.
void TestResizeBilinearGradIsTheAdjoint() {
  const int32_t in_h = 3, in_w = 5, out_h = 7, out_w = 4, ch = 2;
  const bool options[3][2] = {{false, false}, {true, false}, {false, true}};
  for (const auto& o : options) {
    std::vector<float> x(in_h * in_w * ch), y(out_h * out_w * ch);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.7f * static_cast<float>(i));
    for (size_t i = 0; i < y.size(); ++i) y[i] = std::cos(1.3f * static_cast<float>(i));
    double forward_dot = 0.0;
    const float sh = reference::ResizeScale(in_h, out_h, o[0]);
    const float sw = reference::ResizeScale(in_w, out_w, o[0]);
    for (int32_t oy = 0; oy < out_h; ++oy) {
      float src_y;
      int32_t y0, y1;
      reference::ResizeSource(oy, sh, o[1], in_h, &src_y, &y0, &y1);
      for (int32_t ox = 0; ox < out_w; ++ox) {
        float src_x;
        int32_t x0, x1;
        reference::ResizeSource(ox, sw, o[1], in_w, &src_x, &x0, &x1);
        const double wy = static_cast<double>(src_y) - y0;
        const double wx = static_cast<double>(src_x) - x0;
        for (int32_t c = 0; c < ch; ++c) {
          auto at = [&](int32_t yy, int32_t xx) { return x[(yy * in_w + xx) * ch + c]; };
          const double v = at(y0, x0) * (1 - wy) * (1 - wx) + at(y1, x0) * wy * (1 - wx) +
                           at(y0, x1) * (1 - wy) * wx + at(y1, x1) * wy * wx;
          forward_dot += v * y[(oy * out_w + ox) * ch + c];
        }
      }
    }
    std::vector<float> grad(x.size());
    reference::ResizeBilinearGrad(1, in_h, in_w, ch, out_h, out_w, o[0], o[1], y.data(),
                                  grad.data());
    double adjoint_dot = 0.0;
    for (size_t i = 0; i < x.size(); ++i) adjoint_dot += static_cast<double>(grad[i]) * x[i];
    TL_EXPECT(std::fabs(forward_dot - adjoint_dot) <= 1e-5 * (1.0 + std::fabs(forward_dot)));
  }
}

reference::GroupNormShape GnShape(const GoldenCase& c, const GoldenTensor& x) {
  return {x.dim(0), x.dim(1) * x.dim(2), x.dim(3), static_cast<int32_t>(c.param("groups"))};
}

std::vector<float> OptionalFloat(const GoldenCase& c, const std::string& name) {
  return c.has_tensor(name) ? c.tensor(name).AsFloat() : std::vector<float>();
}

const float* DataOrNull(const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }

void TestGroupNorm(const std::string& dir) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/group_norm.golden")) {
    const auto& xt = c.tensor("x");
    const auto shape = GnShape(c, xt);
    const auto x = xt.AsFloat();
    const auto gamma = OptionalFloat(c, "gamma"), beta = OptionalFloat(c, "beta");
    const auto want = c.tensor("expected_y").AsFloat();
    std::vector<float> stats(static_cast<size_t>(2 * shape.batch * shape.groups));
    std::vector<float> y(want.size(), 5.0f);
    reference::GroupNorm(shape, x.data(), DataOrNull(gamma), DataOrNull(beta),
                         static_cast<float>(c.param("epsilon")), stats.data(), y.data());
    TL_EXPECT_CLOSE(y, want, kRtol, Atol(want), "group_norm/" + c.name);
    auto in_place = x;  // y may alias x
    reference::GroupNorm(shape, in_place.data(), DataOrNull(gamma), DataOrNull(beta),
                         static_cast<float>(c.param("epsilon")), stats.data(),
                         in_place.data());
    TL_EXPECT(in_place == y);
  }
}

// The variables of a golden norm-gradient case: a tensor with an expected_
// twin is updated in place.
struct NormParams {
  std::vector<float> gamma, beta, dx;
  reference::NormGradOutputs out{};
};

NormParams LoadNormParams(const GoldenCase& c, size_t dx_size) {
  NormParams p;
  p.gamma = OptionalFloat(c, "gamma");
  p.beta = OptionalFloat(c, "beta");
  if (c.has_tensor("expected_grad_input")) p.dx.assign(dx_size, 4.0f);
  p.out.grad_input = p.dx.empty() ? nullptr : p.dx.data();
  p.out.gamma = c.has_tensor("expected_gamma") ? p.gamma.data() : nullptr;
  p.out.beta = c.has_tensor("expected_beta") ? p.beta.data() : nullptr;
  p.out.learning_rate = static_cast<float>(c.param("learning_rate"));
  return p;
}

void CheckNormParams(const GoldenCase& c, const NormParams& p, const std::string& what) {
  for (const auto& [name, got] :
       {std::pair<std::string, const std::vector<float>*>{"expected_grad_input", &p.dx},
        {"expected_gamma", &p.gamma}, {"expected_beta", &p.beta}}) {
    if (!c.has_tensor(name)) continue;
    const auto want = c.tensor(name).AsFloat();
    TL_EXPECT_CLOSE(*got, want, kRtol, Atol(want), what + " " + name);
  }
  // A constant gamma is read, never written.
  if (c.has_tensor("gamma") && !c.has_tensor("expected_gamma")) {
    TL_EXPECT(p.gamma == c.tensor("gamma").AsFloat());
  }
}

void TestGroupNormGrad(const std::string& dir) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/group_norm_grad.golden")) {
    const auto& xt = c.tensor("x");
    const auto shape = GnShape(c, xt);
    const auto x = xt.AsFloat();
    const auto grad_output = c.tensor("grad_output").AsFloat();
    const auto mask = OptionalMask(c);
    NormParams p = LoadNormParams(c, x.size());
    std::vector<float> stats(static_cast<size_t>(2 * shape.batch * shape.groups));
    reference::GroupNormGrad(shape, grad_output.data(), MaskOrNull(mask), x.data(),
                             DataOrNull(p.gamma), static_cast<float>(c.param("epsilon")),
                             stats.data(), p.out);
    CheckNormParams(c, p, "group_norm_grad/" + c.name);
  }
}

void TestBatchNormGrad(const std::string& dir) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/batch_norm_grad.golden")) {
    const auto& go = c.tensor("grad_output");
    const int32_t channels = go.shape.back();
    const int32_t rows = static_cast<int32_t>(go.values.size()) / channels;
    const auto grad_output = go.AsFloat();
    const auto mask = OptionalMask(c);
    const auto mean = OptionalFloat(c, "mean"), inv_std = OptionalFloat(c, "inv_std");
    NormParams p = LoadNormParams(c, grad_output.size());
    const std::string what = "batch_norm_grad/" + c.name;
    if (c.has_tensor("x") && c.tensor("x").dtype == "i8") {
      const auto x = c.tensor("x").As<int8_t>();
      const reference::ActivationQuantization quant{
          static_cast<float>(c.param("input_scale")),
          static_cast<int32_t>(c.param("input_zero_point"))};
      reference::BatchNormGrad<int8_t>(grad_output.data(), MaskOrNull(mask), x.data(), quant,
                                       DataOrNull(mean), DataOrNull(inv_std),
                                       DataOrNull(p.gamma), rows, channels, p.out);
    } else {
      const auto x = OptionalFloat(c, "x");
      reference::BatchNormGrad<float>(grad_output.data(), MaskOrNull(mask), DataOrNull(x),
                                      reference::kNoQuantization, DataOrNull(mean),
                                      DataOrNull(inv_std), DataOrNull(p.gamma), rows,
                                      channels, p.out);
    }
    CheckNormParams(c, p, what);
  }
}

// The filter as [out_channels, fan_in] (OHWI rows; FC [Co, Ci]).
void FilterRows(const GoldenTensor& w, int32_t* out_channels, int32_t* fan_in) {
  *out_channels = w.dim(0);
  *fan_in = static_cast<int32_t>(w.values.size()) / w.dim(0);
}

void TestWeightStandardize(const std::string& dir) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/weight_standardize.golden")) {
    int32_t out_channels, fan_in;
    FilterRows(c.tensor("w"), &out_channels, &fan_in);
    const auto w = c.tensor("w").AsFloat();
    const auto want = c.tensor("expected_w_hat").AsFloat();
    const float eps = static_cast<float>(c.param("epsilon"));
    std::vector<float> w_hat(want.size(), 5.0f);
    reference::WeightStandardize(w.data(), out_channels, fan_in, eps, w_hat.data());
    TL_EXPECT_CLOSE(w_hat, want, kRtol, Atol(want), "weight_standardize/" + c.name);
    auto in_place = w;  // w_hat may alias w
    reference::WeightStandardize(in_place.data(), out_channels, fan_in, eps,
                                 in_place.data());
    TL_EXPECT(in_place == w_hat);
  }
}

void TestWeightStandardizeGrad(const std::string& dir) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/weight_standardize_grad.golden")) {
    int32_t out_channels, fan_in;
    FilterRows(c.tensor("w"), &out_channels, &fan_in);
    const auto w = c.tensor("w").AsFloat();
    const auto g = c.tensor("grad_w_hat").AsFloat();
    const auto want = c.tensor("expected_grad_w").AsFloat();
    const float eps = static_cast<float>(c.param("epsilon"));
    std::vector<float> grad_w(want.size(), 5.0f);
    reference::WeightStandardizeGrad(w.data(), g.data(), out_channels, fan_in, eps,
                                     grad_w.data());
    TL_EXPECT_CLOSE(grad_w, want, kRtol, Atol(want), "weight_standardize_grad/" + c.name);
    auto in_place = g;  // grad_w may alias grad_w_hat
    reference::WeightStandardizeGrad(w.data(), in_place.data(), out_channels, fan_in, eps,
                                     in_place.data());
    TL_EXPECT(in_place == grad_w);
  }
}

void TestDepthwiseConv(const std::string& dir) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/depthwise_conv.golden")) {
    const auto& x = c.tensor("input");
    const auto& f = c.tensor("filter");
    const auto& expected = c.tensor("expected_output");
    ConvGeometry g{};
    TL_EXPECT(reference::MakeConvGeometry(
        x.dim(0), x.dim(1), x.dim(2), x.dim(3), f.dim(3), f.dim(1), f.dim(2),
        static_cast<int32_t>(c.param("stride_h")), static_cast<int32_t>(c.param("stride_w")),
        c.param("padding") != 0 ? Padding::kSame : Padding::kValid, &g));
    TL_EXPECT(g.out_h == expected.dim(1) && g.out_w == expected.dim(2));
    const auto input = x.AsFloat();
    const auto filter = f.AsFloat();
    const auto bias = c.has_tensor("bias") ? c.tensor("bias").AsFloat() : std::vector<float>();
    const auto act = static_cast<reference::Activation>(static_cast<int>(c.param("activation")));
    const auto want = expected.AsFloat();
    std::vector<float> got(want.size(), 9.0f);
    std::vector<uint8_t> mask(static_cast<size_t>(reference::MaskBytes(
                                  static_cast<int32_t>(want.size()))), 0xA5);
    const bool has_mask = c.has_tensor("expected_mask");
    reference::DepthwiseConv(g, input.data(), filter.data(), bias.empty() ? nullptr : bias.data(),
                             act, got.data(), has_mask ? mask.data() : nullptr);
    TL_EXPECT_CLOSE(got, want, kRtol, Atol(want), "depthwise_conv/" + c.name);
    if (has_mask) {
      TL_EXPECT(mask == c.tensor("expected_mask").As<uint8_t>());
      // The fused mask is TL_RELU_MASK's on the kernel's own output.
      std::vector<uint8_t> separate(mask.size(), 0);
      reference::PackActivationMask<float, float>(
          got.data(), static_cast<int32_t>(got.size()), 0.0f,
          act == reference::Activation::kRelu6 ? 6.0f : INFINITY, separate.data());
      TL_EXPECT(mask == separate);
    }
  }
}

// One int8 stage of an inverted_residual golden: multipliers from the
// scales as TFLM's conv kernels compute them, the activation's clamp.
struct Stage {
  std::vector<int8_t> filter;
  std::vector<int32_t> bias, multiplier, shift;
  reference::Int8Stage view;
};

void MakeStage(const GoldenCase& c, const std::string& prefix, double in_scale,
               int32_t in_zero_point, double out_scale, int32_t out_zero_point,
               int activation, Stage* s) {
  s->filter = c.tensor(prefix + "_filter").As<int8_t>();
  s->bias = c.tensor(prefix + "_bias").As<int32_t>();
  const auto scales = c.tensor(prefix + "_scales").AsFloat();
  s->multiplier.resize(scales.size());
  s->shift.resize(scales.size());
  reference::StageMultipliers(static_cast<float>(in_scale), scales.data(),
                              static_cast<float>(out_scale),
                              static_cast<int32_t>(scales.size()),
                              s->multiplier.data(), s->shift.data());
  int32_t lo = 0, hi = 0;
  reference::Int8ActivationRange(activation, static_cast<float>(out_scale),
                                 out_zero_point, &lo, &hi);
  s->view = {s->filter.data(), s->bias.data(), s->multiplier.data(),
             s->shift.data(), in_zero_point, out_zero_point, lo, hi};
}

void TestInvertedResidual(const std::string& dir) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/inverted_residual.golden")) {
    const auto& x = c.tensor("input");
    const auto& dw = c.tensor("depthwise_filter");
    const auto& expected = c.tensor("expected_output");
    reference::InvertedResidualShape shape{};
    shape.batch = x.dim(0);
    shape.in_h = x.dim(1);
    shape.in_w = x.dim(2);
    shape.in_c = x.dim(3);
    shape.expanded_c = dw.dim(3);
    shape.out_c = expected.dim(3);
    shape.filter_h = dw.dim(1);
    shape.filter_w = dw.dim(2);
    shape.stride_h = static_cast<int32_t>(c.param("stride_h"));
    shape.stride_w = static_cast<int32_t>(c.param("stride_w"));
    shape.has_expand = c.param("has_expand") != 0;
    if (shape.has_expand) {
      shape.expand_filter_h = c.tensor("expand_filter").dim(1);
      shape.expand_filter_w = c.tensor("expand_filter").dim(2);
    }
    shape.expand_stride_h = static_cast<int32_t>(c.param("expand_stride_h"));
    shape.expand_stride_w = static_cast<int32_t>(c.param("expand_stride_w"));
    const auto padding_of = [&c](const char* key) {
      return c.param(key) != 0 ? Padding::kSame : Padding::kValid;
    };
    TL_EXPECT(reference::SetInvertedResidualGeometry(padding_of("expand_padding"),
                                                     padding_of("padding"), &shape));
    TL_EXPECT(shape.out_h == expected.dim(1) && shape.out_w == expected.dim(2));
    if (c.has_tensor("expected_expand_mask")) {
      TL_EXPECT(c.tensor("expected_expand_mask").values.size() ==
                static_cast<size_t>(reference::MaskBytes(
                    shape.batch * shape.expanded_h * shape.expanded_w * shape.expanded_c)));
    }
    const auto zp = [&c](const char* key) { return static_cast<int32_t>(c.param(key)); };
    Stage expand, depthwise, project;
    double dw_scale = c.param("input_scale");
    int32_t dw_zero_point = zp("input_zero_point");
    if (shape.has_expand) {
      MakeStage(c, "expand", c.param("input_scale"), zp("input_zero_point"),
                c.param("expand_scale"), zp("expand_zero_point"),
                static_cast<int>(c.param("expand_activation")), &expand);
      dw_scale = c.param("expand_scale");
      dw_zero_point = zp("expand_zero_point");
    }
    MakeStage(c, "depthwise", dw_scale, dw_zero_point, c.param("depthwise_scale"),
              zp("depthwise_zero_point"), static_cast<int>(c.param("depthwise_activation")),
              &depthwise);
    MakeStage(c, "project", c.param("depthwise_scale"), zp("depthwise_zero_point"),
              c.param("output_scale"), zp("output_zero_point"), 0, &project);
    const auto input = x.As<int8_t>();
    std::vector<int8_t> got(expected.values.size(), 0x5A);
    std::vector<int8_t> scratch(reference::InvertedResidualScratchBytes(shape), 0x33);
    reference::InvertedResidual(shape, expand.view, depthwise.view, project.view,
                                input.data(), got.data(), scratch.data());
    TL_EXPECT(got == expected.As<int8_t>());
    // Again with the masks the golden has (garbage-filled: the kernel zeroes
    // them); the output must not change.
    reference::InvertedResidualMasks masks{};
    std::vector<uint8_t> expand_mask, dw_mask;
    // The mask of one stage ("expand" or "depthwise"), when the golden has it.
    auto stage_mask = [&](const std::string& stage, std::vector<uint8_t>* mask,
                          uint8_t** data, int32_t* lower, int32_t* upper) {
      const std::string name = "expected_" + stage + "_mask";
      if (!c.has_tensor(name)) return;
      mask->assign(c.tensor(name).values.size(), 0xA5);
      *data = mask->data();
      reference::Int8MaskBounds(
          c.param(stage + "_activation") == 2,
          static_cast<float>(c.param(stage + "_scale")),
          zp((stage + "_zero_point").c_str()), lower, upper);
    };
    stage_mask("expand", &expand_mask, &masks.expand, &masks.expand_lower,
               &masks.expand_upper);
    stage_mask("depthwise", &dw_mask, &masks.depthwise, &masks.depthwise_lower,
               &masks.depthwise_upper);
    std::fill(got.begin(), got.end(), 0x5A);
    reference::InvertedResidual(shape, expand.view, depthwise.view, project.view,
                                input.data(), got.data(), scratch.data(), &masks);
    TL_EXPECT(got == expected.As<int8_t>());
    if (masks.expand != nullptr) {
      TL_EXPECT(expand_mask == c.tensor("expected_expand_mask").As<uint8_t>());
    }
    if (masks.depthwise != nullptr) {
      TL_EXPECT(dw_mask == c.tensor("expected_depthwise_mask").As<uint8_t>());
    }
  }
}

void TestConv(const std::string& dir) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/conv.golden")) {
    const auto& x = c.tensor("input");
    const auto& f = c.tensor("filter");
    const auto& expected = c.tensor("expected_output");
    ConvGeometry g{};
    TL_EXPECT(reference::MakeConvGeometry(
        x.dim(0), x.dim(1), x.dim(2), x.dim(3), f.dim(0), f.dim(1), f.dim(2),
        static_cast<int32_t>(c.param("stride_h")), static_cast<int32_t>(c.param("stride_w")),
        c.param("padding") != 0 ? Padding::kSame : Padding::kValid, &g,
        static_cast<int32_t>(c.param("groups"))));
    TL_EXPECT(g.out_h == expected.dim(1) && g.out_w == expected.dim(2));
    const auto input = x.AsFloat();
    auto filter = f.AsFloat();
    const auto raw_filter = filter;
    if (c.param("standardize") != 0) {
      // TL_CONV's standardised forward: WeightStandardize, then Conv.
      reference::WeightStandardize(filter.data(), f.dim(0),
                                   static_cast<int32_t>(filter.size()) / f.dim(0),
                                   static_cast<float>(c.param("epsilon")), filter.data());
      const auto want_hat = c.tensor("expected_filter_hat").AsFloat();
      TL_EXPECT_CLOSE(filter, want_hat, kRtol, Atol(want_hat), "conv/" + c.name + "/filter_hat");
    }
    const auto bias = c.has_tensor("bias") ? c.tensor("bias").AsFloat() : std::vector<float>();
    const auto act = static_cast<reference::Activation>(static_cast<int>(c.param("activation")));
    const auto want = expected.AsFloat();
    std::vector<float> got(want.size(), 9.0f);
    std::vector<uint8_t> mask(static_cast<size_t>(reference::MaskBytes(
                                  static_cast<int32_t>(want.size()))), 0xA5);
    const bool has_mask = c.has_tensor("expected_mask");
    reference::Conv(g, input.data(), filter.data(), bias.empty() ? nullptr : bias.data(), act,
                    got.data(), has_mask ? mask.data() : nullptr);
    TL_EXPECT_CLOSE(got, want, kRtol, Atol(want), "conv/" + c.name);
    if (has_mask) TL_EXPECT(mask == c.tensor("expected_mask").As<uint8_t>());
    if (c.param("standardize") != 0) {
      // On the fly from the raw filter's row statistics: bit for bit the same.
      std::vector<float> stats(
          static_cast<size_t>(reference::kStandardizeStatsPerRow * g.out_c));
      reference::WeightStandardizeStats(raw_filter.data(), g.out_c,
                                        static_cast<int32_t>(raw_filter.size()) / g.out_c,
                                        static_cast<float>(c.param("epsilon")), stats.data());
      std::vector<float> fly(want.size(), 9.0f);
      std::vector<uint8_t> fly_mask(mask.size(), 0xA5);
      reference::ConvStandardized(g, input.data(), raw_filter.data(), stats.data(),
                                  bias.empty() ? nullptr : bias.data(), act, fly.data(),
                                  has_mask ? fly_mask.data() : nullptr);
      TL_EXPECT(fly == got);
      if (has_mask) TL_EXPECT(fly_mask == mask);
    }
  }
}

}  // namespace

void RunLayerKernelTests(const std::string& dir) {
  TestSoftmaxXent(dir);
  TestSoftmaxXentRejectsBadLabels();
  TestSoftmaxXentGradientSumsToZero();
  TestAvgPoolGrad(dir);
  TestResizeBilinearGrad(dir);
  TestResizeBilinearGradIsTheAdjoint();
  TestGroupNorm(dir);
  TestGroupNormGrad(dir);
  TestBatchNormGrad(dir);
  TestWeightStandardize(dir);
  TestWeightStandardizeGrad(dir);
  TestDepthwiseConv(dir);
  TestInvertedResidual(dir);
  TestConv(dir);
}

}  // namespace testing
}  // namespace tflite_tl
