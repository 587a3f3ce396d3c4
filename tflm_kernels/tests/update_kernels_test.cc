// TL_CONV_UPDATE / TL_DEPTHWISE_UPDATE / TL_WS_CONV_UPDATE math
// (reference/conv_update.h, ws_conv_update.h) against the TF goldens, plus
// what goldens cannot express: bit-equality with the unfused weight-gradient
// (+ standardisation VJP) + SGD kernels, rejected channels, the zero step of
// an all-zero gradient; TL_DEPTHWISE_CHAIN_UPDATE
// (reference/depthwise_chain_update.h) against its golden and bit-equal to
// the unfused chain.
#include <cmath>
#include <cstring>
#include <cstdint>
#include <string>
#include <vector>

#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/bias_grad.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/conv_input_grad.h"
#include "tflm_kernels/reference/conv_update.h"
#include "tflm_kernels/reference/depthwise_chain_update.h"
#include "tflm_kernels/reference/depthwise_input_grad.h"
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

// Deterministic values in [-1, 1) (and bits) for the chain tests.
struct Lcg {
  uint32_t state;
  uint32_t Next() {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  }
  float Uniform() { return static_cast<float>(Next() % 2048u) / 1024.0f - 1.0f; }
};

template <typename T>
std::vector<T> Draw(Lcg* rng, size_t n, float scale) {
  std::vector<T> v(n);
  for (T& x : v) {
    x = static_cast<T>(rng->Uniform() * scale);
  }
  return v;
}

std::vector<uint8_t> DrawMask(Lcg* rng, int32_t elements) {
  std::vector<uint8_t> m((elements + 7) / 8);
  for (uint8_t& b : m) b = static_cast<uint8_t>(rng->Next() & 0xff);
  return m;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// One chain: the fused op against TL_DEPTHWISE_UPDATE (input gradient +
// bias step) then TL_CONV_UPDATE (masked bias step + 1x1 input gradient).
template <typename FilterT>
void CheckChain(int32_t batch, int32_t h, int32_t w, int32_t c, int32_t k,
                int32_t stride, Padding padding, int32_t up_in_c, bool masks,
                bool int8_copies, uint32_t seed, int32_t down_out_c = 0) {
  ConvGeometry g{};
  TL_EXPECT(reference::MakeConvGeometry(batch, h, w, c, c, k, k, stride, stride,
                                        padding, &g));
  Lcg rng{seed};
  const bool int8 = sizeof(FilterT) == 1;
  const int32_t out_size = batch * g.out_h * g.out_w * c;
  const int32_t in_size = batch * h * w * c;
  std::vector<float> dy = Draw<float>(&rng, out_size, 1.0f);
  // A downstream 1x1 conv: dy is its input gradient, from ds_dy.
  const int32_t ds_c = down_out_c > 0 ? down_out_c : 1;
  const std::vector<float> ds_dy =
      Draw<float>(&rng, batch * g.out_h * g.out_w * ds_c, 1.0f);
  const std::vector<FilterT> ds_filter =
      Draw<FilterT>(&rng, ds_c * c, int8 ? 127.0f : 1.0f);
  const std::vector<float> ds_scales = Draw<float>(&rng, ds_c, 0.01f);
  const std::vector<float> ds_bias0 = Draw<float>(&rng, ds_c, 1.0f);
  const std::vector<float> ds_bias_scales(ds_c, 1e-3f);
  std::vector<float> ds_bias = ds_bias0;
  std::vector<int32_t> ds_bias_q(ds_c);
  const std::vector<uint8_t> mask = DrawMask(&rng, out_size);
  const std::vector<uint8_t> up_mask = DrawMask(&rng, in_size);
  const std::vector<FilterT> filter = Draw<FilterT>(&rng, k * k * c, int8 ? 127.0f : 1.0f);
  const std::vector<float> scales = Draw<float>(&rng, c, 0.01f);
  const std::vector<FilterT> up_filter =
      Draw<FilterT>(&rng, c * up_in_c, int8 ? 127.0f : 1.0f);
  const std::vector<float> up_scales = Draw<float>(&rng, c, 0.01f);
  const std::vector<float> bias0 = Draw<float>(&rng, c, 1.0f);
  const std::vector<float> up_bias0 = Draw<float>(&rng, c, 1.0f);
  const std::vector<float> bias_scales(c, 1e-3f);
  const reference::SgdOptions sgd{0.25f, !int8_copies};
  const uint8_t* m = masks ? mask.data() : nullptr;
  const uint8_t* um = masks ? up_mask.data() : nullptr;
  const float* s = int8 ? scales.data() : nullptr;
  const float* us = int8 ? up_scales.data() : nullptr;
  // Unfused.
  if (down_out_c > 0) {
    ConvGeometry dg{};
    TL_EXPECT(reference::MakeConvGeometry(batch, g.out_h, g.out_w, c, ds_c, 1, 1, 1, 1,
                                          Padding::kValid, &dg));
    reference::ConvInputGrad<FilterT>(dg, ds_dy.data(), ds_filter.data(),
                                      int8 ? ds_scales.data() : nullptr, dy.data(), nullptr);
    reference::TrainedParameters ds{nullptr, nullptr, nullptr, ds_bias.data(),
                                    int8_copies ? ds_bias_q.data() : nullptr,
                                    ds_bias_scales.data()};
    reference::BiasUpdate(ds_dy.data(), nullptr, batch * g.out_h * g.out_w, ds_c, sgd, ds);
  }
  std::vector<float> dx(in_size), up_dx(batch * h * w * up_in_c);
  std::vector<float> bias = bias0, up_bias = up_bias0;
  std::vector<int32_t> bias_q(c), up_bias_q(c);
  reference::TrainedParameters dw{nullptr, nullptr, nullptr, bias.data(),
                                  int8_copies ? bias_q.data() : nullptr,
                                  bias_scales.data()};
  reference::TrainedParameters up{nullptr, nullptr, nullptr, up_bias.data(),
                                  int8_copies ? up_bias_q.data() : nullptr,
                                  bias_scales.data()};
  reference::DepthwiseInputGrad<FilterT>(g, dy.data(), filter.data(), s, dx.data(), m);
  reference::BiasUpdate(dy.data(), m, batch * g.out_h * g.out_w, c, sgd, dw);
  ConvGeometry pg{};
  TL_EXPECT(reference::MakeConvGeometry(batch, h, w, up_in_c, c, 1, 1, 1, 1,
                                        Padding::kValid, &pg));
  reference::ConvInputGrad<FilterT>(pg, dx.data(), up_filter.data(), us, up_dx.data(), um);
  reference::BiasUpdate(dx.data(), um, batch * h * w, c, sgd, up);
  // Fused, with the input gradient and without it.
  for (bool with_grad : {true, false}) {
    std::vector<float> f_bias = bias0, f_up_bias = up_bias0;
    std::vector<int32_t> f_bias_q(c), f_up_bias_q(c);
    std::vector<float> f_up_dx(up_dx.size(), 12345.0f);
    reference::TrainedParameters f_dw{nullptr, nullptr, nullptr, f_bias.data(),
                                      int8_copies ? f_bias_q.data() : nullptr,
                                      bias_scales.data()};
    reference::ChainUpstream<FilterT> chain{
        um, with_grad ? up_filter.data() : nullptr, us, up_in_c,
        with_grad ? f_up_dx.data() : nullptr,
        {nullptr, nullptr, nullptr, f_up_bias.data(),
         int8_copies ? f_up_bias_q.data() : nullptr, bias_scales.data()}};
    std::vector<float> f_ds_bias = ds_bias0;
    std::vector<int32_t> f_ds_bias_q(ds_c);
    const reference::ChainDownstream<FilterT> down{
        ds_dy.data(), ds_filter.data(), int8 ? ds_scales.data() : nullptr, ds_c,
        {nullptr, nullptr, nullptr, f_ds_bias.data(),
         int8_copies ? f_ds_bias_q.data() : nullptr, ds_bias_scales.data()}};
    const bool with_ds = down_out_c > 0;
    std::vector<float> scratch(reference::DepthwiseChainScratchFloats(g, with_ds) + 1,
                               -7.0f);
    reference::DepthwiseChainUpdate<FilterT, FilterT>(
        g, with_ds ? nullptr : dy.data(), m, filter.data(), s, sgd, f_dw, chain,
        scratch.data(), with_ds ? &down : nullptr);
    if (with_ds) {
      TL_EXPECT(SameBits(f_ds_bias, ds_bias));
      TL_EXPECT(f_ds_bias_q == ds_bias_q);
    }
    TL_EXPECT(scratch.back() == -7.0f);  // nothing past the scratch size
    TL_EXPECT(SameBits(f_bias, bias));
    TL_EXPECT(SameBits(f_up_bias, up_bias));
    TL_EXPECT(f_bias_q == bias_q && f_up_bias_q == up_bias_q);
    if (with_grad) TL_EXPECT(SameBits(f_up_dx, up_dx));
  }
}

void TestChainUpdateEqualsUnfusedKernels() {
  // batch, h, w, c, k, stride, padding, up_in_c, masks, int8 copies, seed
  CheckChain<int8_t>(1, 8, 8, 6, 3, 2, Padding::kSame, 3, true, true, 1);
  CheckChain<int8_t>(2, 7, 5, 4, 3, 2, Padding::kSame, 5, true, true, 2);
  CheckChain<int8_t>(2, 6, 6, 5, 3, 1, Padding::kSame, 2, false, true, 3);
  CheckChain<int8_t>(1, 9, 7, 3, 5, 2, Padding::kValid, 4, true, false, 4);
  CheckChain<float>(2, 8, 6, 6, 3, 1, Padding::kSame, 4, true, false, 5);
  CheckChain<float>(1, 7, 7, 4, 3, 2, Padding::kSame, 3, true, false, 6);
  CheckChain<float>(2, 5, 6, 3, 3, 2, Padding::kValid, 2, false, false, 7);
  // With a downstream 1x1 conv computing grad_output (last argument: its
  // output channels).
  CheckChain<int8_t>(2, 8, 8, 6, 3, 1, Padding::kSame, 3, true, true, 8, 4);
  CheckChain<int8_t>(1, 7, 5, 4, 3, 2, Padding::kSame, 5, true, false, 9, 3);
  CheckChain<float>(2, 6, 7, 5, 3, 1, Padding::kSame, 2, true, false, 10, 6);
  CheckChain<float>(1, 9, 7, 3, 5, 2, Padding::kValid, 4, false, false, 11, 2);
}

}  // namespace

// TL_DEPTHWISE_CHAIN_UPDATE's reference against its TF golden (the unfused
// layers' float64 gradients), with sentinels past every written buffer.
template <typename FilterT, typename UpFilterT>
void RunChainGolden(const GoldenCase& c) {
  const std::string what = "depthwise_chain_update/" + c.name;
  const auto& go = c.tensor("grad_output");
  const auto& f = c.tensor("filter");
  const bool with_up = c.has_tensor("up_filter");
  const bool with_ds = c.has_tensor("ds_filter");
  const int32_t ch = f.dim(3);
  ConvGeometry g{};
  TL_EXPECT(reference::MakeConvGeometry(
      go.dim(0), static_cast<int32_t>(c.param("in_h")),
      static_cast<int32_t>(c.param("in_w")), ch, ch, f.dim(1), f.dim(2),
      static_cast<int32_t>(c.param("stride_h")), static_cast<int32_t>(c.param("stride_w")),
      c.param("padding") != 0 ? Padding::kSame : Padding::kValid, &g));
  TL_EXPECT(g.out_h == go.dim(1) && g.out_w == go.dim(2));
  const reference::SgdOptions sgd{static_cast<float>(c.param("learning_rate")),
                                  c.param("qas") != 0};
  const auto grad_output = go.AsFloat();
  std::vector<uint8_t> mask, up_mask;
  if (c.has_tensor("mask")) mask = c.tensor("mask").As<uint8_t>();
  if (c.has_tensor("up_mask")) up_mask = c.tensor("up_mask").As<uint8_t>();
  const auto floats = [&c](const std::string& name) {
    return c.has_tensor(name) ? c.tensor(name).AsFloat() : std::vector<float>();
  };
  const auto or_null = [](std::vector<float>& v) { return v.empty() ? nullptr : v.data(); };
  const std::vector<FilterT> filter = f.As<FilterT>();
  std::vector<float> filter_scales = floats("filter_scales");
  // The trained biases (float and int32 copy), each with a sentinel.
  struct Trained {
    std::vector<float> bias, scales;
    std::vector<int32_t> bias_q;
  };
  const auto load = [&](const std::string& name) {
    Trained t;
    t.bias = WithSentinel<float>(c, name, -99.0f);
    t.bias_q = WithSentinel<int32_t>(c, name + "_q", 123456);
    t.scales = floats(name + "_q_scales");
    return t;
  };
  const auto params = [&](Trained& t) {
    reference::TrainedParameters p{};
    p.bias = t.bias.empty() ? nullptr : t.bias.data();
    p.bias_q = t.bias_q.empty() ? nullptr : t.bias_q.data();
    p.bias_scales = or_null(t.scales);
    return p;
  };
  Trained dw = load("bias"), up = load("up_bias"), ds = load("ds_bias");
  std::vector<UpFilterT> up_filter, ds_filter;
  std::vector<float> up_scales = floats("up_filter_scales");
  std::vector<float> ds_scales = floats("ds_filter_scales");
  std::vector<float> up_grad;
  int32_t up_in_c = 0;
  if (with_up) {
    up_filter = c.tensor("up_filter").As<UpFilterT>();
    up_in_c = c.tensor("up_filter").dim(3);
    up_grad.assign(c.tensor("expected_up_grad_input").values.size() + 1, 0.0f);
    up_grad.back() = 4321.0f;
  }
  reference::ChainUpstream<UpFilterT> chain{
      MaskOrNull(up_mask), with_up ? up_filter.data() : nullptr, or_null(up_scales),
      up_in_c, with_up ? up_grad.data() : nullptr, params(up)};
  reference::ChainDownstream<UpFilterT> down{};
  if (with_ds) {
    ds_filter = c.tensor("ds_filter").As<UpFilterT>();
    down = {grad_output.data(), ds_filter.data(), or_null(ds_scales),
            c.tensor("ds_filter").dim(0), params(ds)};
  }
  std::vector<float> scratch(
      static_cast<size_t>(reference::DepthwiseChainScratchFloats(g, with_ds)));
  reference::DepthwiseChainUpdate<FilterT, UpFilterT>(
      g, with_ds ? nullptr : grad_output.data(), MaskOrNull(mask), filter.data(),
      or_null(filter_scales), sgd, params(dw), chain, scratch.data(),
      with_ds ? &down : nullptr);
  ExpectClose(dw.bias, c, "expected_bias", -99.0f, what);
  ExpectExact<int32_t>(dw.bias_q, c, "expected_bias_q", 123456, what);
  ExpectClose(up.bias, c, "expected_up_bias", -99.0f, what);
  ExpectExact<int32_t>(up.bias_q, c, "expected_up_bias_q", 123456, what);
  ExpectClose(ds.bias, c, "expected_ds_bias", -99.0f, what);
  ExpectExact<int32_t>(ds.bias_q, c, "expected_ds_bias_q", 123456, what);
  if (with_up) ExpectClose(up_grad, c, "expected_up_grad_input", 4321.0f, what);
}

void TestChainUpdateGoldens(const std::string& file) {
  for (const GoldenCase& c : ReadGoldenCases(file)) {
    const bool dw_int8 = c.tensor("filter").dtype == "i8";
    const char* pw = c.has_tensor("up_filter")
                         ? "up_filter"
                         : (c.has_tensor("ds_filter") ? "ds_filter" : nullptr);
    const bool pw_int8 = pw != nullptr && c.tensor(pw).dtype == "i8";
    if (dw_int8 && pw_int8) {
      RunChainGolden<int8_t, int8_t>(c);
    } else if (dw_int8) {
      RunChainGolden<int8_t, float>(c);
    } else if (pw_int8) {
      RunChainGolden<float, int8_t>(c);
    } else {
      RunChainGolden<float, float>(c);
    }
  }
}

// TL_WS_CONV_UPDATE: the golden step, and bit-equality with the unfused
// ConvWeightGradSparse (all channels) -> WeightStandardizeGrad -> SgdUpdate
// chain it replaces (BiasGradFusedSgd for the bias); the input gradient from
// the raw filter (StandardizedConvInputGrad) against the golden and against
// WeightStandardize -> ConvInputGrad.
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
    if (c.has_tensor("expected_grad_input")) {
      // The input gradient through w_hat recomputed from the raw filter: the
      // golden's, and bit-identical to ConvInputGrad through the
      // WeightStandardize that TL_CONV's forward ran.
      std::vector<float> hat_scratch(
          static_cast<size_t>(reference::StandardizedConvInputGradScratch(g)) + 1, 0.0f);
      hat_scratch.back() = -77.0f;
      const auto want = c.tensor("expected_grad_input").AsFloat();
      std::vector<float> grad_input(want.size() + 1, 0.0f);
      grad_input.back() = 4321.0f;
      reference::StandardizedConvInputGrad(g, grad_output.data(),
                                           mask.empty() ? nullptr : mask.data(), filter.data(),
                                           eps, hat_scratch.data(), grad_input.data());
      TL_EXPECT(hat_scratch.back() == -77.0f && grad_input.back() == 4321.0f);
      grad_input.pop_back();
      TL_EXPECT_CLOSE(grad_input, want, kRtol, Atol(want),
                      "ws_conv_update/" + c.name + "/grad_input");
      std::vector<float> w_hat(filter.size()), unfused(want.size());
      reference::WeightStandardize(filter.data(), g.out_c,
                                   static_cast<int32_t>(scratch.size()), eps, w_hat.data());
      reference::ConvInputGrad<float>(g, grad_output.data(), w_hat.data(), nullptr,
                                      unfused.data(), mask.empty() ? nullptr : mask.data());
      TL_EXPECT(grad_input == unfused);
    }
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
  TestChainUpdateEqualsUnfusedKernels();
  TestChainUpdateGoldens(dir + "/depthwise_chain_update.golden");
}

}  // namespace testing
}  // namespace tflite_tl
