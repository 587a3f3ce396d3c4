// TL_CONV_UPDATE / TL_DEPTHWISE_UPDATE / TL_WS_CONV_UPDATE math
// (reference/conv_update.h, ws_conv_update.h) against the TF goldens, plus
// what goldens cannot express: bit-equality with the unfused weight-gradient
// (+ standardisation VJP) + SGD kernels, rejected channels, the zero step of
// an all-zero gradient.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/bias_grad.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/conv_update.h"
#include "tflm_kernels/reference/conv_weight_grad.h"
#include "tflm_kernels/reference/depthwise_weight_grad.h"
#include "tflm_kernels/reference/sgd.h"
#include "tflm_kernels/reference/weight_standardize.h"
#include "tflm_kernels/reference/ws_conv_update.h"
#include "tflm_kernels/tests/kernel_tests.h"
#include "tflm_kernels/tests/test_harness.h"

namespace tflite_tl {
namespace testing {
namespace {

using reference::ActivationQuantization;
using reference::ConvGeometry;
using reference::Padding;

// One golden case's tensors as the kernel sees them, with one sentinel
// element past the end of every parameter buffer.
struct UpdateCase {
  bool depthwise = false;
  int32_t axis = 0;
  ConvGeometry g{};
  bool trains_filter = false;
  int32_t input_depth = 0;
  std::vector<float> grad_output, input_f;
  std::vector<int8_t> input_q;
  ActivationQuantization quant = reference::kNoQuantization;
  std::vector<uint8_t> mask;
  bool has_channels = false;
  std::vector<int32_t> channels;
  int32_t num_channels = 0;
  std::vector<float> filter, filter_scales, bias, bias_scales;
  std::vector<int8_t> filter_q;
  std::vector<int32_t> bias_q;
  reference::SgdOptions sgd{0.0f, true};

  reference::TrainedParameters Params() {
    reference::TrainedParameters p{};
    p.filter = filter.empty() ? nullptr : filter.data();
    p.filter_q = filter_q.empty() ? nullptr : filter_q.data();
    p.filter_scales = filter_scales.empty() ? nullptr : filter_scales.data();
    p.bias = bias.empty() ? nullptr : bias.data();
    p.bias_q = bias_q.empty() ? nullptr : bias_q.data();
    p.bias_scales = bias_scales.empty() ? nullptr : bias_scales.data();
    return p;
  }

  bool Run() {
    const int32_t* list = has_channels ? channels.data() : nullptr;
    const uint8_t* m = MaskOrNull(mask);
    if (!trains_filter) {
      const int32_t out_c = g.out_c;
      reference::BiasUpdate(grad_output.data(), m,
                            static_cast<int32_t>(grad_output.size()) / out_c, out_c,
                            sgd, Params());
      return true;
    }
    if (depthwise) {
      return input_q.empty()
                 ? reference::DepthwiseUpdate<float>(g, grad_output.data(), m,
                                                     input_f.data(), quant, input_depth,
                                                     list, num_channels, sgd, Params())
                 : reference::DepthwiseUpdate<int8_t>(g, grad_output.data(), m,
                                                      input_q.data(), quant, input_depth,
                                                      list, num_channels, sgd, Params());
    }
    return input_q.empty()
               ? reference::ConvUpdate<float>(g, grad_output.data(), m, input_f.data(),
                                              quant, input_depth, list, num_channels,
                                              axis, sgd, Params())
               : reference::ConvUpdate<int8_t>(g, grad_output.data(), m, input_q.data(),
                                               quant, input_depth, list, num_channels,
                                               axis, sgd, Params());
  }
};

template <typename T>
std::vector<T> WithSentinel(const GoldenCase& c, const std::string& name, T sentinel) {
  if (!c.has_tensor(name)) return {};
  std::vector<T> v = c.tensor(name).As<T>();
  v.push_back(sentinel);
  return v;
}

UpdateCase LoadUpdateCase(const GoldenCase& c, bool depthwise) {
  UpdateCase u;
  u.depthwise = depthwise;
  u.axis = static_cast<int32_t>(c.param_or("channel_axis", 0));
  u.sgd = {static_cast<float>(c.param("learning_rate")), c.param("qas") != 0};
  const auto& go = c.tensor("grad_output");
  const Dims4 gd = Nhwc(go);
  u.grad_output = go.AsFloat();
  u.mask = OptionalMask(c);
  u.has_channels = c.has_tensor("channels");
  if (u.has_channels) u.channels = c.tensor("channels").As<int32_t>();
  u.filter = WithSentinel<float>(c, "filter", 1234.5f);
  u.filter_q = WithSentinel<int8_t>(c, "filter_q", int8_t{77});
  if (c.has_tensor("filter_q_scales")) {
    u.filter_scales = c.tensor("filter_q_scales").AsFloat();
  }
  u.bias = WithSentinel<float>(c, "bias", -99.0f);
  u.bias_q = WithSentinel<int32_t>(c, "bias_q", 123456);
  if (c.has_tensor("bias_q_scales")) u.bias_scales = c.tensor("bias_q_scales").AsFloat();
  u.trains_filter = !u.filter.empty();
  u.g.out_c = gd[3];
  if (!u.trains_filter) return u;
  const auto& in = c.tensor("input");
  const Dims4 x = Nhwc(in);
  u.input_depth = x[3];
  if (in.dtype == "i8") {
    u.input_q = in.As<int8_t>();
    u.quant = {static_cast<float>(c.param("input_scale")),
               static_cast<int32_t>(c.param("input_zero_point"))};
  } else {
    u.input_f = in.AsFloat();
  }
  const Dims4 f = Nhwc(c.tensor(c.has_tensor("filter_q") ? "filter_q" : "filter"));
  const int32_t groups = static_cast<int32_t>(c.param_or("groups", 1));
  const int32_t in_c = depthwise ? gd[3] : f[3] * groups;
  TL_EXPECT(reference::MakeConvGeometry(
      x[0], x[1], x[2], in_c, gd[3], f[1], f[2],
      static_cast<int32_t>(c.param("stride_h")), static_cast<int32_t>(c.param("stride_w")),
      c.param("padding") != 0 ? Padding::kSame : Padding::kValid, &u.g,
      depthwise ? 1 : groups));
  TL_EXPECT(u.g.out_h == gd[1] && u.g.out_w == gd[2]);
  const int32_t axis_size = depthwise || u.axis == 0 ? u.g.out_c : u.g.in_c;
  u.num_channels = u.has_channels ? static_cast<int32_t>(u.channels.size()) : axis_size;
  return u;
}

template <typename T>
void ExpectExact(std::vector<T> got, const GoldenCase& c, const std::string& name,
                 T sentinel, const std::string& what) {
  if (!c.has_tensor(name)) return;
  TL_EXPECT(!got.empty() && got.back() == sentinel);
  got.pop_back();
  const std::vector<T> want = c.tensor(name).As<T>();
  if (got != want) {
    size_t i = 0;
    while (i < want.size() && got[i] == want[i]) ++i;
    Fail(__FILE__, __LINE__, what + ": " + name + " differs first at element " +
                                 std::to_string(i));
  }
}

void ExpectClose(std::vector<float> got, const GoldenCase& c, const std::string& name,
                 float sentinel, const std::string& what) {
  if (!c.has_tensor(name)) return;
  TL_EXPECT(!got.empty() && got.back() == sentinel);
  got.pop_back();
  const auto want = c.tensor(name).AsFloat();
  TL_EXPECT_CLOSE(got, want, kRtol, Atol(want), what + " " + name);
}

void TestUpdateGoldens(const std::string& file, bool depthwise) {
  for (const GoldenCase& c : ReadGoldenCases(file)) {
    UpdateCase u = LoadUpdateCase(c, depthwise);
    const std::string what = (depthwise ? "depthwise_update/" : "conv_update/") + c.name;
    TL_EXPECT(u.Run());
    ExpectClose(u.filter, c, "expected_filter", 1234.5f, what);
    ExpectExact<int8_t>(u.filter_q, c, "expected_filter_q", int8_t{77}, what);
    ExpectClose(u.bias, c, "expected_bias", -99.0f, what);
    ExpectExact<int32_t>(u.bias_q, c, "expected_bias_q", 123456, what);
  }
}

// Float filters on channel axis 0 (or depthwise): the in-place update must
// equal, bit for bit, the unfused weight gradient of the chosen channels
// followed by SgdUpdate, and the bias update BiasGradFusedSgd, on the
// gradient masked beforehand.
void TestUpdateEqualsUnfusedKernels(const std::string& file, bool depthwise) {
  for (const GoldenCase& c : ReadGoldenCases(file)) {
    if (c.has_tensor("filter_q") || c.param_or("channel_axis", 0) != 0) continue;
    if (c.has_tensor("bias_q") && c.param("qas") == 0) continue;  // scaled gradient
    UpdateCase u = LoadUpdateCase(c, depthwise);
    if (u.input_depth != u.g.in_c) continue;  // a channel-subset input
    std::vector<float> masked = u.grad_output;
    if (!u.mask.empty()) {
      reference::ApplyActivationMask(masked.data(), u.mask.data(),
                                     static_cast<int32_t>(masked.size()), masked.data());
    }
    std::vector<float> want_filter = u.filter;
    std::vector<float> want_bias = u.bias;
    std::vector<int32_t> all(static_cast<size_t>(u.g.out_c));
    for (int32_t i = 0; i < u.g.out_c; ++i) all[static_cast<size_t>(i)] = i;
    const std::vector<int32_t>& list = u.has_channels ? u.channels : all;
    const float lr = u.sgd.learning_rate;
    if (u.trains_filter && depthwise) {
      std::vector<float> grad(u.filter.size() - 1);
      if (u.input_q.empty()) {
        reference::DepthwiseWeightGrad(u.g, u.input_f.data(), masked.data(), grad.data());
      } else {
        reference::DepthwiseWeightGrad<int8_t>(u.g, u.input_q.data(), u.quant,
                                               masked.data(), grad.data());
      }
      for (int32_t ch : list) {
        for (size_t t = 0; t < grad.size() / static_cast<size_t>(u.g.out_c); ++t) {
          const size_t i = t * static_cast<size_t>(u.g.out_c) + static_cast<size_t>(ch);
          reference::SgdUpdate(&grad[i], 1, lr, &want_filter[i]);
        }
      }
    } else if (u.trains_filter) {
      const size_t row = (u.filter.size() - 1) / static_cast<size_t>(u.g.out_c);
      std::vector<float> grad(list.size() * row);
      const int32_t k = static_cast<int32_t>(list.size());
      TL_EXPECT(u.input_q.empty()
                    ? reference::ConvWeightGradSparse(u.g, u.input_f.data(), masked.data(),
                                                      list.data(), k, grad.data())
                    : reference::ConvWeightGradSparse<int8_t>(
                          u.g, u.input_q.data(), u.quant, masked.data(), list.data(), k,
                          grad.data()));
      for (size_t j = 0; j < list.size(); ++j) {
        reference::SgdUpdate(&grad[j * row], static_cast<int32_t>(row), lr,
                             &want_filter[static_cast<size_t>(list[j]) * row]);
      }
    }
    if (!u.bias.empty()) {
      const int32_t rows = static_cast<int32_t>(masked.size()) / u.g.out_c;
      reference::BiasGradFusedSgd(masked.data(), rows, u.g.out_c, lr, want_bias.data(),
                                  nullptr);
    }
    TL_EXPECT(u.Run());
    TL_EXPECT(u.filter == want_filter);
    TL_EXPECT(u.bias == want_bias);
  }
}

void TestUpdateRejectsBadChannels() {
  ConvGeometry g{};
  TL_EXPECT(reference::MakeConvGeometry(1, 3, 3, 2, 2, 1, 1, 1, 1, Padding::kValid, &g));
  const std::vector<float> x(18, 1.0f), dy(18, 1.0f);
  std::vector<float> filter(4, 5.0f), bias(2, 7.0f);
  reference::TrainedParameters p{};
  p.filter = filter.data();
  p.bias = bias.data();
  const reference::SgdOptions sgd{0.5f, true};
  const int32_t bad[] = {0, 2};
  TL_EXPECT(reference::FirstChannelOutOfRange(bad, 2, 2) == 1);
  TL_EXPECT(!reference::ConvUpdate<float>(g, dy.data(), nullptr, x.data(),
                                          reference::kNoQuantization, 2, bad, 2, 0, sgd, p));
  const int32_t negative[] = {-1};
  TL_EXPECT(!reference::ConvUpdate<float>(g, dy.data(), nullptr, x.data(),
                                          reference::kNoQuantization, 2, negative, 1, 1,
                                          sgd, p));
  TL_EXPECT(!reference::DepthwiseUpdate<float>(g, dy.data(), nullptr, x.data(),
                                               reference::kNoQuantization, 2, bad, 2, sgd,
                                               p));
  // Nothing written: not the filter, not the bias.
  TL_EXPECT(filter == std::vector<float>(4, 5.0f));
  TL_EXPECT(bias == std::vector<float>(2, 7.0f));
}

void TestZeroGradientIsNoStep() {
  // The gradient of a skipped (non-finite loss) step: all zeros, while the
  // saved input holds inf and NaN. Nothing is written, not even the int8
  // copies (set here to values their re-quantization would change).
  ConvGeometry g{};
  TL_EXPECT(reference::MakeConvGeometry(1, 3, 3, 2, 2, 2, 2, 1, 1, Padding::kValid, &g));
  std::vector<float> x(18, 1.0f);
  x[0] = INFINITY;
  x[5] = std::nanf("");
  const std::vector<float> dy(8, 0.0f);
  std::vector<float> filter(16, 5.0f), bias(2, 7.0f), master(16, 5.0f);
  std::vector<int8_t> filter_q(16, 3);
  std::vector<int32_t> bias_q(2, 11);
  const std::vector<float> scales(2, 0.5f);
  const reference::SgdOptions sgd{1e30f, true};
  reference::TrainedParameters dense{};
  dense.filter = filter.data();
  dense.bias = bias.data();
  TL_EXPECT(reference::ConvUpdate<float>(g, dy.data(), nullptr, x.data(),
                                         reference::kNoQuantization, 2, nullptr, 2, 0, sgd,
                                         dense));
  reference::TrainedParameters int8{master.data(), filter_q.data(), scales.data(),
                                    bias.data(), bias_q.data(), scales.data()};
  TL_EXPECT(reference::ConvUpdate<float>(g, dy.data(), nullptr, x.data(),
                                         reference::kNoQuantization, 2, nullptr, 2, 0, sgd,
                                         int8));
  ConvGeometry dw{};
  TL_EXPECT(reference::MakeConvGeometry(1, 3, 3, 2, 2, 2, 2, 1, 1, Padding::kValid, &dw));
  const std::vector<float> dy_dw(8, 0.0f);
  TL_EXPECT(reference::DepthwiseUpdate<float>(dw, dy_dw.data(), nullptr, x.data(),
                                              reference::kNoQuantization, 2, nullptr, 2, sgd,
                                              int8));
  TL_EXPECT(filter == std::vector<float>(16, 5.0f));
  TL_EXPECT(master == std::vector<float>(16, 5.0f));
  TL_EXPECT(bias == std::vector<float>(2, 7.0f));
  TL_EXPECT(filter_q == std::vector<int8_t>(16, 3));
  TL_EXPECT(bias_q == std::vector<int32_t>(2, 11));
}

void TestRequantization() {
  // Half away from zero, clamped to the symmetric range, NaN to 0.
  TL_EXPECT(reference::QuantizeWeight(0.25f, 0.5f) == 1);
  TL_EXPECT(reference::QuantizeWeight(-0.25f, 0.5f) == -1);
  TL_EXPECT(reference::QuantizeWeight(0.24f, 0.5f) == 0);
  TL_EXPECT(reference::QuantizeWeight(100.0f, 0.5f) == 127);
  TL_EXPECT(reference::QuantizeWeight(-100.0f, 0.5f) == -127);
  TL_EXPECT(reference::QuantizeWeight(std::nanf(""), 0.5f) == 0);
  TL_EXPECT(reference::QuantizeBias(2.5f, 1.0f) == 3);
  TL_EXPECT(reference::QuantizeBias(-2.5f, 1.0f) == -3);
  TL_EXPECT(reference::QuantizeBias(1e30f, 1e-6f) == INT32_MAX);
  TL_EXPECT(reference::QuantizeBias(-1e30f, 1e-6f) == INT32_MIN);
  TL_EXPECT(reference::QuantizeBias(std::nanf(""), 1e-6f) == 0);
}

void TestTapOutputRange() {
  int32_t b = 0, e = 0;
  // 7 inputs, filter 3, stride 2, SAME (pad 1): tap 0 reads iy = 2*oy - 1.
  reference::TapOutputRange(0, 2, 1, 7, 4, &b, &e);
  TL_EXPECT(b == 1 && e == 4);
  reference::TapOutputRange(2, 2, 1, 7, 4, &b, &e);  // iy = 2*oy + 1 <= 6
  TL_EXPECT(b == 0 && e == 3);
  reference::TapOutputRange(4, 1, 0, 3, 3, &b, &e);  // never inside
  TL_EXPECT(b == e);
}

}  // namespace

// TL_WS_CONV_UPDATE: the golden step, and bit-equality with the unfused
// ConvWeightGradSparse (all channels) -> WeightStandardizeGrad -> SgdUpdate
// chain it replaces (BiasGradFusedSgd for the bias).
void TestStandardizedConvUpdate(const std::string& dir) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/ws_conv_update.golden")) {
    const auto& go = c.tensor("grad_output");
    const auto& x = c.tensor("input");
    const auto& f = c.tensor("filter");
    ConvGeometry g{};
    TL_EXPECT(reference::MakeConvGeometry(
        x.dim(0), x.dim(1), x.dim(2), x.dim(3), f.dim(0), f.dim(1), f.dim(2),
        static_cast<int32_t>(c.param("stride_h")), static_cast<int32_t>(c.param("stride_w")),
        c.param("padding") != 0 ? Padding::kSame : Padding::kValid, &g,
        static_cast<int32_t>(c.param("groups"))));
    const float lr = static_cast<float>(c.param("learning_rate"));
    const float eps = static_cast<float>(c.param("epsilon"));
    const auto grad_output = go.AsFloat();
    const auto input = x.AsFloat();
    std::vector<uint8_t> mask;
    if (c.has_tensor("mask")) mask = c.tensor("mask").As<uint8_t>();
    const bool has_bias = c.has_tensor("bias");
    std::vector<float> filter = f.AsFloat();
    std::vector<float> bias = has_bias ? c.tensor("bias").AsFloat() : std::vector<float>();
    std::vector<float> scratch(static_cast<size_t>(reference::StandardizedConvScratch(g)));
    std::vector<float> want_filter = filter, want_bias = bias;
    reference::StandardizedConvUpdate(g, grad_output.data(), mask.empty() ? nullptr : mask.data(),
                                      input.data(), eps, lr, filter.data(),
                                      has_bias ? bias.data() : nullptr, scratch.data());
    const auto expected = c.tensor("expected_filter").AsFloat();
    TL_EXPECT_CLOSE(filter, expected, kRtol, Atol(expected), "ws_conv_update/" + c.name);
    if (has_bias) {
      const auto eb = c.tensor("expected_bias").AsFloat();
      TL_EXPECT_CLOSE(bias, eb, kRtol, Atol(eb), "ws_conv_update/" + c.name + "/bias");
    }
    // The unfused chain.
    std::vector<float> masked = grad_output;
    if (!mask.empty()) {
      reference::ApplyActivationMask(masked.data(), mask.data(),
                                     static_cast<int32_t>(masked.size()), masked.data());
    }
    std::vector<int32_t> all(static_cast<size_t>(g.out_c));
    for (int32_t i = 0; i < g.out_c; ++i) all[static_cast<size_t>(i)] = i;
    std::vector<float> grad(want_filter.size());
    TL_EXPECT(reference::ConvWeightGradSparse(g, input.data(), masked.data(), all.data(),
                                              g.out_c, grad.data()));
    reference::WeightStandardizeGrad(want_filter.data(), grad.data(), g.out_c,
                                     static_cast<int32_t>(scratch.size()), eps, grad.data());
    reference::SgdUpdate(grad.data(), static_cast<int32_t>(grad.size()), lr, want_filter.data());
    if (has_bias) {
      reference::BiasGradFusedSgd(masked.data(), static_cast<int32_t>(masked.size()) / g.out_c,
                                  g.out_c, lr, want_bias.data(), nullptr);
    }
    TL_EXPECT(filter == want_filter);
    TL_EXPECT(bias == want_bias);
  }
}

void RunUpdateKernelTests(const std::string& dir) {
  TestTapOutputRange();
  TestRequantization();
  TestUpdateGoldens(dir + "/conv_update.golden", false);
  TestUpdateGoldens(dir + "/depthwise_update.golden", true);
  TestUpdateEqualsUnfusedKernels(dir + "/conv_update.golden", false);
  TestUpdateEqualsUnfusedKernels(dir + "/depthwise_update.golden", true);
  TestUpdateRejectsBadChannels();
  TestZeroGradientIsNoStep();
  TestStandardizedConvUpdate(dir);
}

}  // namespace testing
}  // namespace tflite_tl
