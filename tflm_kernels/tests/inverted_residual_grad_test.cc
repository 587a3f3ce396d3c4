// InvertedResidualInputGrad against the three-op chain it replaces
// (ConvInputGrad -> DepthwiseInputGrad -> ConvInputGrad), bit for bit, on
// pseudo-random data: strides 1 and 2, SAME and VALID, odd sizes, kernels 3
// and 5, with and without expand conv and each mask, batch 2; and against
// the float64 goldens of inverted_residual_input_grad.golden.
// InvertedResidualUpdate likewise against ConvInputGrad (+ ConvUpdate when
// the project trains: TL_CONV_UPDATE with its fused input gradient) ->
// DepthwiseInputGrad + DepthwiseUpdate (TL_DEPTHWISE_UPDATE with its fused
// input gradient) -> ConvInputGrad, and against
// inverted_residual_update.golden.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/conv_input_grad.h"
#include "tflm_kernels/reference/conv_update.h"
#include "tflm_kernels/reference/depthwise_input_grad.h"
#include "tflm_kernels/reference/inverted_residual_input_grad.h"
#include "tflm_kernels/reference/inverted_residual_update.h"
#include "tflm_kernels/tests/kernel_tests.h"
#include "tflm_kernels/tests/test_harness.h"

namespace tflite_tl {
namespace testing {
namespace {

using reference::ConvGeometry;
using reference::Padding;

// A small deterministic generator (the test must not depend on <random>'s
// distributions, which differ between standard libraries).
class Lcg {
 public:
  explicit Lcg(uint32_t seed) : state_(seed) {}
  uint32_t Next() {
    state_ = state_ * 1664525u + 1013904223u;
    return state_ >> 8;
  }
  float Uniform(float lo, float hi) {
    return lo + (hi - lo) * static_cast<float>(Next() & 0xFFFF) / 65535.0f;
  }
  std::vector<float> Floats(size_t n, float lo, float hi) {
    std::vector<float> v(n);
    for (float& x : v) x = Uniform(lo, hi);
    return v;
  }
  std::vector<int8_t> Int8s(size_t n) {
    std::vector<int8_t> v(n);
    for (int8_t& x : v) x = static_cast<int8_t>(static_cast<int32_t>(Next() % 255u) - 127);
    return v;
  }
  std::vector<uint8_t> Mask(int32_t elements) {
    std::vector<uint8_t> v(static_cast<size_t>(reference::MaskBytes(elements)));
    for (uint8_t& x : v) x = static_cast<uint8_t>(Next());
    return v;
  }

 private:
  uint32_t state_;
};

struct GradCase {
  const char* name;
  int32_t batch, h, w, in_c, e_c, out_c, k, stride;
  Padding padding;
  bool expand, out_mask, dw_mask, expand_mask;
};

// Both stream orders run on every case; failures name the one that failed.
std::string Order(bool by_channel) { return by_channel ? " (by channel)" : " (by rows)"; }

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  // (memcmp must not see the null data() of an empty vector.)
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

void CheckAgainstChain(const GradCase& c, uint32_t seed, bool by_channel) {
  const int32_t e_c = c.expand ? c.e_c : c.in_c;
  ConvGeometry dw_g{}, project_g{}, expand_g{};
  TL_EXPECT(reference::MakeConvGeometry(c.batch, c.h, c.w, e_c, e_c, c.k, c.k, c.stride,
                                        c.stride, c.padding, &dw_g));
  TL_EXPECT(reference::MakeConvGeometry(c.batch, dw_g.out_h, dw_g.out_w, e_c, c.out_c, 1,
                                        1, 1, 1, Padding::kValid, &project_g));
  TL_EXPECT(reference::MakeConvGeometry(c.batch, c.h, c.w, c.in_c, e_c, 1, 1, 1, 1,
                                        Padding::kValid, &expand_g));
  const int32_t out_size = c.batch * dw_g.out_h * dw_g.out_w * c.out_c;
  const int32_t dz_size = c.batch * dw_g.out_h * dw_g.out_w * e_c;
  const int32_t de_size = c.batch * c.h * c.w * e_c;
  const int32_t in_size = c.batch * c.h * c.w * c.in_c;
  Lcg rng(seed);
  const auto dy = rng.Floats(static_cast<size_t>(out_size), -1.0f, 1.0f);
  const auto project = rng.Int8s(static_cast<size_t>(c.out_c * e_c));
  const auto project_scales = rng.Floats(static_cast<size_t>(c.out_c), 1e-3f, 2e-2f);
  const auto dw = rng.Int8s(static_cast<size_t>(c.k * c.k * e_c));
  const auto dw_scales = rng.Floats(static_cast<size_t>(e_c), 1e-3f, 2e-2f);
  const auto expand = rng.Int8s(static_cast<size_t>(e_c * c.in_c));
  const auto expand_scales = rng.Floats(static_cast<size_t>(e_c), 1e-3f, 2e-2f);
  const auto out_mask = rng.Mask(out_size);
  const auto dw_mask = rng.Mask(dz_size);
  const auto expand_mask = rng.Mask(de_size);
  const uint8_t* m_out = c.out_mask ? out_mask.data() : nullptr;
  const uint8_t* m_dw = c.dw_mask ? dw_mask.data() : nullptr;
  const uint8_t* m_exp = c.expand_mask ? expand_mask.data() : nullptr;

  std::vector<float> dz(static_cast<size_t>(dz_size), 7.0f);
  std::vector<float> de(static_cast<size_t>(de_size), 7.0f);
  std::vector<float> want(static_cast<size_t>(in_size), 7.0f);
  reference::ConvInputGrad<int8_t>(project_g, dy.data(), project.data(),
                                   project_scales.data(), dz.data(), m_out);
  reference::DepthwiseInputGrad<int8_t>(dw_g, dz.data(), dw.data(), dw_scales.data(),
                                        c.expand ? de.data() : want.data(), m_dw);
  if (c.expand) {
    reference::ConvInputGrad<int8_t>(expand_g, de.data(), expand.data(),
                                     expand_scales.data(), want.data(), m_exp);
  }

  reference::InvertedResidualInputGradShape s{};
  s.batch = c.batch;
  s.in_h = c.h;
  s.in_w = c.w;
  s.in_c = c.in_c;
  s.expanded_c = e_c;
  s.out_h = dw_g.out_h;
  s.out_w = dw_g.out_w;
  s.out_c = c.out_c;
  s.filter_h = s.filter_w = c.k;
  s.stride_h = s.stride_w = c.stride;
  s.pad_top = dw_g.pad_top;
  s.pad_left = dw_g.pad_left;
  s.has_expand = c.expand;
  s.by_channel = by_channel;
  std::vector<float> scratch(
      static_cast<size_t>(reference::InvertedResidualInputGradScratchFloats(s)), 9.0f);
  std::vector<float> got(static_cast<size_t>(in_size), 9.0f);
  const reference::InvertedResidualGradMasks masks = {m_out, m_dw, m_exp};
  reference::InvertedResidualInputGrad(
      s, dy.data(), {project.data(), project_scales.data()},
      {dw.data(), dw_scales.data()}, {expand.data(), expand_scales.data()}, masks,
      got.data(), scratch.data());
  if (!SameBits(got, want)) {
    Fail(__FILE__, __LINE__, std::string("inverted_residual_input_grad/") + c.name + Order(by_channel) +
                                 ": not bit-identical to the three-op chain");
  }
}

void TestInvertedResidualInputGradEqualsChain() {
  const GradCase cases[] = {
      {"expand_k3_s1_same_b2_all_masks", 2, 7, 6, 3, 8, 4, 3, 1, Padding::kSame, true, true,
       true, true},
      {"expand_k3_s2_same_odd_b2", 2, 9, 7, 4, 12, 5, 3, 2, Padding::kSame, true, false, true,
       true},
      {"expand_k3_s2_same_even", 1, 8, 8, 3, 6, 3, 3, 2, Padding::kSame, true, true, true,
       true},
      {"expand_k3_s1_valid_b2", 2, 8, 7, 3, 6, 4, 3, 1, Padding::kValid, true, false, true,
       true},
      {"expand_k3_s2_valid_odd_b2", 2, 9, 9, 2, 6, 3, 3, 2, Padding::kValid, true, true,
       true, true},
      {"expand_k3_s2_valid_even_skips_rows", 2, 8, 8, 2, 6, 3, 3, 2, Padding::kValid, true,
       false, true, true},
      {"expand_k5_s2_same_b2", 2, 11, 9, 3, 8, 4, 5, 2, Padding::kSame, true, true, true,
       true},
      {"expand_k5_s1_valid", 1, 9, 8, 3, 5, 3, 5, 1, Padding::kValid, true, false, false,
       true},
      {"expand_linear_stages", 2, 6, 6, 3, 6, 4, 3, 1, Padding::kSame, true, false, false,
       false},
      {"no_expand_k3_s1_same_b2", 2, 7, 7, 6, 6, 4, 3, 1, Padding::kSame, false, true, true,
       false},
      {"no_expand_k3_s2_same_odd_b2", 2, 9, 7, 5, 5, 3, 3, 2, Padding::kSame, false, false,
       true, false},
      {"no_expand_k3_s2_valid_b2", 2, 8, 9, 4, 4, 6, 3, 2, Padding::kValid, false, true,
       false, false},
      {"no_expand_k3_s1_valid_out_mask", 1, 6, 5, 4, 4, 2, 3, 1, Padding::kValid, false,
       true, true, false},
      {"one_row_output", 2, 3, 5, 2, 4, 3, 3, 2, Padding::kValid, true, true, true, true},
  };
  uint32_t seed = 1;
  for (const GradCase& c : cases) {
    for (bool by_channel : {false, true}) CheckAgainstChain(c, seed, by_channel);
    ++seed;
  }
}

const uint8_t* OptionalMask(const GoldenCase& c, const std::string& name,
                            std::vector<uint8_t>* storage) {
  if (!c.has_tensor(name)) return nullptr;
  *storage = c.tensor(name).As<uint8_t>();
  return storage->data();
}

void TestInvertedResidualInputGradGoldens(const std::string& dir, bool by_channel) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/inverted_residual_input_grad.golden")) {
    const auto& dy_t = c.tensor("grad_output");
    const auto& dw_t = c.tensor("depthwise_filter");
    const auto& want_t = c.tensor("expected_grad_input");
    reference::InvertedResidualInputGradShape s{};
    s.batch = want_t.dim(0);
    s.in_h = want_t.dim(1);
    s.in_w = want_t.dim(2);
    s.in_c = want_t.dim(3);
    s.expanded_c = dw_t.dim(3);
    s.out_h = dy_t.dim(1);
    s.out_w = dy_t.dim(2);
    s.out_c = dy_t.dim(3);
    s.filter_h = dw_t.dim(1);
    s.filter_w = dw_t.dim(2);
    s.stride_h = static_cast<int32_t>(c.param("stride_h"));
    s.stride_w = static_cast<int32_t>(c.param("stride_w"));
    const Padding padding = c.param("padding") != 0 ? Padding::kSame : Padding::kValid;
    TL_EXPECT(reference::ConvOutputSize(padding, s.in_h, s.filter_h, s.stride_h) == s.out_h);
    s.pad_top = reference::ConvPaddingBefore(padding, s.in_h, s.filter_h, s.stride_h, s.out_h);
    s.pad_left =
        reference::ConvPaddingBefore(padding, s.in_w, s.filter_w, s.stride_w, s.out_w);
    s.has_expand = c.param("has_expand") != 0;
    s.by_channel = by_channel;
    const auto dy = dy_t.AsFloat();
    const auto project = c.tensor("project_filter").As<int8_t>();
    const auto project_scales = c.tensor("project_scales").AsFloat();
    const auto dw = dw_t.As<int8_t>();
    const auto dw_scales = c.tensor("depthwise_scales").AsFloat();
    std::vector<int8_t> expand;
    std::vector<float> expand_scales;
    if (s.has_expand) {
      expand = c.tensor("expand_filter").As<int8_t>();
      expand_scales = c.tensor("expand_scales").AsFloat();
    }
    std::vector<uint8_t> m_out, m_dw, m_exp;
    const reference::InvertedResidualGradMasks masks = {
        OptionalMask(c, "out_mask", &m_out), OptionalMask(c, "dw_mask", &m_dw),
        OptionalMask(c, "expand_mask", &m_exp)};
    std::vector<float> scratch(
        static_cast<size_t>(reference::InvertedResidualInputGradScratchFloats(s)), 9.0f);
    const auto want = want_t.AsFloat();
    std::vector<float> got(want.size(), 9.0f);
    reference::InvertedResidualInputGrad(
        s, dy.data(), {project.data(), project_scales.data()},
        {dw.data(), dw_scales.data()}, {expand.data(), expand_scales.data()}, masks,
        got.data(), scratch.data());
    TL_EXPECT_CLOSE(got, want, kRtol, Atol(want), "inverted_residual_input_grad/" + c.name + Order(by_channel));
  }
}

struct UpdateCase {
  const char* name;
  int32_t batch, h, w, in_c, e_c, out_c, k, stride;
  Padding padding;
  // channels: "subset" (K chosen, the saved input holds only them), "list"
  // (K chosen, the full saved input), "all" (no list); K = num_chosen.
  const char* channels;
  int32_t num_chosen;
  bool out_mask, dw_mask, expand_mask, filter, bias, qas, zero_grad;
  // The project: "none" (frozen), or its trained filter's channels as
  // "in_subset" / "in_list" / "in_all" (input channels; the saved input holds
  // only the chosen ones / all) and "out_list" / "out_all" (output
  // channels), K = project_chosen; "bias": only its bias trains.
  const char* project = "none";
  int32_t project_chosen = 0;
  bool project_bias = false;
};

void CheckUpdateAgainstChain(const UpdateCase& c, uint32_t seed, bool by_channel,
                             bool stops = false) {
  const int32_t e_c = c.e_c;
  ConvGeometry dw_g{}, project_g{}, expand_g{};
  TL_EXPECT(reference::MakeConvGeometry(c.batch, c.h, c.w, e_c, e_c, c.k, c.k, c.stride,
                                        c.stride, c.padding, &dw_g));
  TL_EXPECT(reference::MakeConvGeometry(c.batch, dw_g.out_h, dw_g.out_w, e_c, c.out_c, 1,
                                        1, 1, 1, Padding::kValid, &project_g));
  TL_EXPECT(reference::MakeConvGeometry(c.batch, c.h, c.w, c.in_c, e_c, 1, 1, 1, 1,
                                        Padding::kValid, &expand_g));
  const int32_t out_size = c.batch * dw_g.out_h * dw_g.out_w * c.out_c;
  const int32_t dz_size = c.batch * dw_g.out_h * dw_g.out_w * e_c;
  const int32_t de_size = c.batch * c.h * c.w * e_c;
  const int32_t in_size = c.batch * c.h * c.w * c.in_c;
  const int32_t taps = c.k * c.k;
  Lcg rng(seed);
  auto dy = rng.Floats(static_cast<size_t>(out_size), -1.0f, 1.0f);
  if (c.zero_grad) dy.assign(dy.size(), 0.0f);
  const auto project = rng.Int8s(static_cast<size_t>(c.out_c * e_c));
  const auto project_scales = rng.Floats(static_cast<size_t>(c.out_c), 1e-3f, 2e-2f);
  const auto dw_q0 = rng.Int8s(static_cast<size_t>(taps * e_c));
  const auto dw_scales = rng.Floats(static_cast<size_t>(e_c), 1e-3f, 2e-2f);
  const auto expand = rng.Int8s(static_cast<size_t>(e_c * c.in_c));
  const auto expand_scales = rng.Floats(static_cast<size_t>(e_c), 1e-3f, 2e-2f);
  const auto out_mask = rng.Mask(out_size);
  const auto dw_mask = rng.Mask(dz_size);
  const auto expand_mask = rng.Mask(de_size);
  const uint8_t* m_out = c.out_mask ? out_mask.data() : nullptr;
  const uint8_t* m_dw = c.dw_mask ? dw_mask.data() : nullptr;
  const uint8_t* m_exp = c.expand_mask ? expand_mask.data() : nullptr;
  // The chosen channels: every third one from 1, wrapping (unsorted).
  std::vector<int32_t> channels;
  for (int32_t k = 0; k < c.num_chosen; ++k) channels.push_back((1 + 3 * k) % e_c);
  const bool listed = std::string(c.channels) != "all";
  const bool subset = std::string(c.channels) == "subset";
  const int32_t num_channels = listed ? c.num_chosen : e_c;
  const int32_t input_depth = subset ? num_channels : e_c;
  const auto x = rng.Int8s(static_cast<size_t>(c.batch * c.h * c.w * input_depth));
  const reference::ActivationQuantization quant = {0.037f, -5};
  const auto master0 = rng.Floats(static_cast<size_t>(taps * num_channels), -0.5f, 0.5f);
  const auto bias0 = rng.Floats(static_cast<size_t>(e_c), -0.5f, 0.5f);
  const auto bias_scales = rng.Floats(static_cast<size_t>(e_c), 1e-4f, 1e-3f);
  std::vector<int32_t> bias_q0(static_cast<size_t>(e_c));
  for (int32_t i = 0; i < e_c; ++i) {
    bias_q0[static_cast<size_t>(i)] =
        reference::QuantizeBias(bias0[static_cast<size_t>(i)], bias_scales[static_cast<size_t>(i)]);
  }
  const reference::SgdOptions sgd = {c.qas ? 0.05f : 200.0f, c.qas};
  const int32_t* chan = listed ? channels.data() : nullptr;
  // The project's update, drawn after the rest (the frozen cases' data stay
  // as they were).
  const std::string pk = c.project;
  const bool p_filter = pk != "none" && pk != "bias";
  const int32_t p_axis = pk.compare(0, 3, "out") == 0 ? 0 : 1;
  const int32_t p_axis_size = p_axis == 0 ? c.out_c : e_c;
  const bool p_listed = p_filter && pk.find("_all") == std::string::npos;
  const int32_t p_num = p_filter ? (p_listed ? c.project_chosen : p_axis_size) : 0;
  std::vector<int32_t> p_channels;
  for (int32_t k = 0; k < c.project_chosen; ++k) {
    p_channels.push_back((2 + 5 * k) % p_axis_size);
  }
  const int32_t p_depth = pk == "in_subset" ? p_num : e_c;
  const auto px = rng.Int8s(static_cast<size_t>(dz_size / e_c * p_depth));
  const reference::ActivationQuantization p_quant = {0.021f, 3};
  const auto p_master0 = rng.Floats(static_cast<size_t>(p_num * (p_axis == 0 ? e_c : c.out_c)),
                                    -0.5f, 0.5f);
  const auto p_bias0 = rng.Floats(static_cast<size_t>(c.out_c), -0.5f, 0.5f);
  const auto p_bias_scales = rng.Floats(static_cast<size_t>(c.out_c), 1e-4f, 1e-3f);
  std::vector<int32_t> p_bias_q0(static_cast<size_t>(c.out_c));
  for (int32_t i = 0; i < c.out_c; ++i) {
    p_bias_q0[static_cast<size_t>(i)] = reference::QuantizeBias(
        p_bias0[static_cast<size_t>(i)], p_bias_scales[static_cast<size_t>(i)]);
  }
  const int32_t* p_chan = p_listed ? p_channels.data() : nullptr;

  // The chain: each op on its own tensors, the depthwise input gradient
  // through the filter before its step.
  std::vector<float> dz(static_cast<size_t>(dz_size), 7.0f);
  std::vector<float> de(static_cast<size_t>(de_size), 7.0f);
  std::vector<float> want(static_cast<size_t>(in_size), 7.0f);
  auto want_q = dw_q0;
  auto want_master = master0;
  auto want_bias = bias0;
  auto want_bias_q = bias_q0;
  auto want_pq = project;
  auto want_p_master = p_master0;
  auto want_p_bias = p_bias0;
  auto want_p_bias_q = p_bias_q0;
  reference::ConvInputGrad<int8_t>(project_g, dy.data(), want_pq.data(),
                                   project_scales.data(), dz.data(), m_out);
  // TL_CONV_UPDATE after its fused input gradient.
  const reference::TrainedParameters want_pp = {
      p_filter ? want_p_master.data() : nullptr, p_filter ? want_pq.data() : nullptr,
      project_scales.data(), c.project_bias ? want_p_bias.data() : nullptr,
      c.project_bias ? want_p_bias_q.data() : nullptr, p_bias_scales.data()};
  if (p_filter) {
    TL_EXPECT(reference::ConvUpdate<int8_t>(project_g, dy.data(), m_out, px.data(), p_quant,
                                            p_depth, p_chan, p_num, p_axis, sgd, want_pp));
  } else if (c.project_bias) {
    reference::BiasUpdate(dy.data(), m_out, c.batch * dw_g.out_h * dw_g.out_w, c.out_c, sgd,
                          want_pp);
  }
  reference::DepthwiseInputGrad<int8_t>(dw_g, dz.data(), want_q.data(), dw_scales.data(),
                                        de.data(), m_dw);
  reference::TrainedParameters want_p = {
      c.filter ? want_master.data() : nullptr, c.filter ? want_q.data() : nullptr,
      dw_scales.data(), c.bias ? want_bias.data() : nullptr,
      c.bias ? want_bias_q.data() : nullptr, bias_scales.data()};
  if (c.filter) {
    TL_EXPECT(reference::DepthwiseUpdate<int8_t>(dw_g, dz.data(), m_dw, x.data(), quant,
                                                 input_depth, chan, num_channels, sgd,
                                                 want_p));
  } else if (c.bias) {
    reference::BiasUpdate(dz.data(), m_dw, c.batch * dw_g.out_h * dw_g.out_w, e_c, sgd,
                          want_p);
  }
  reference::ConvInputGrad<int8_t>(expand_g, de.data(), expand.data(),
                                   expand_scales.data(), want.data(), m_exp);

  reference::InvertedResidualInputGradShape s{};
  s.batch = c.batch;
  s.in_h = c.h;
  s.in_w = c.w;
  s.in_c = c.in_c;
  s.expanded_c = e_c;
  s.out_h = dw_g.out_h;
  s.out_w = dw_g.out_w;
  s.out_c = c.out_c;
  s.filter_h = s.filter_w = c.k;
  s.stride_h = s.stride_w = c.stride;
  s.pad_top = dw_g.pad_top;
  s.pad_left = dw_g.pad_left;
  s.has_expand = true;
  s.by_channel = by_channel;
  s.stops_at_depthwise = stops;
  auto got_q = dw_q0;
  auto got_master = master0;
  auto got_bias = bias0;
  auto got_bias_q = bias_q0;
  reference::InvertedResidualDepthwiseUpdate u{};
  u.input = c.filter ? x.data() : nullptr;
  u.quant = quant;
  u.input_depth = input_depth;
  u.channels = c.filter ? chan : nullptr;
  u.num_channels = c.filter ? num_channels : 0;
  u.sgd = sgd;
  u.params = {c.filter ? got_master.data() : nullptr, c.filter ? got_q.data() : nullptr,
              dw_scales.data(), c.bias ? got_bias.data() : nullptr,
              c.bias ? got_bias_q.data() : nullptr, bias_scales.data()};
  std::vector<float> scratch(
      static_cast<size_t>(reference::InvertedResidualUpdateScratchFloats(s, u.num_channels)),
      9.0f);
  std::vector<float> got(static_cast<size_t>(in_size), 9.0f);
  const reference::InvertedResidualGradMasks masks = {m_out, m_dw, m_exp};
  auto got_pq = project;
  auto got_p_master = p_master0;
  auto got_p_bias = p_bias0;
  auto got_p_bias_q = p_bias_q0;
  reference::InvertedResidualProjectUpdate pu{};
  pu.input = p_filter ? px.data() : nullptr;
  pu.quant = p_quant;
  pu.input_depth = p_depth;
  pu.channels = p_chan;
  pu.num_channels = p_num;
  pu.channel_axis = p_axis;
  pu.params = {p_filter ? got_p_master.data() : nullptr, p_filter ? got_pq.data() : nullptr,
               project_scales.data(), c.project_bias ? got_p_bias.data() : nullptr,
               c.project_bias ? got_p_bias_q.data() : nullptr, p_bias_scales.data()};
  // Stopping at the depthwise, the op writes no input gradient and reads no
  // expand stage: the parameters must still equal the chain's.
  TL_EXPECT(reference::InvertedResidualUpdate(
      s, dy.data(), {got_pq.data(), project_scales.data()}, {got_q.data(), dw_scales.data()},
      stops ? reference::Int8Filter{nullptr, nullptr}
            : reference::Int8Filter{expand.data(), expand_scales.data()},
      stops ? reference::InvertedResidualGradMasks{m_out, m_dw, nullptr} : masks, u,
      stops ? nullptr : got.data(), scratch.data(), pk == "none" ? nullptr : &pu));
  const std::string what = std::string("inverted_residual_update/") + c.name +
                           Order(by_channel) + (stops ? " stopping at the depthwise" : "");
  if (!SameBits(got_p_master, want_p_master) || !SameBits(got_p_bias, want_p_bias) ||
      got_pq != want_pq || got_p_bias_q != want_p_bias_q) {
    Fail(__FILE__, __LINE__, what + ": the project's parameters differ");
  }
  if (p_filter && !c.zero_grad && got_pq == project && got_p_master == p_master0) {
    Fail(__FILE__, __LINE__, what + ": the project's master did not move");
  }
  if (!stops && !SameBits(got, want)) {
    Fail(__FILE__, __LINE__, what + ": grad_input differs from the chain");
  }
  if (!SameBits(got_master, want_master)) Fail(__FILE__, __LINE__, what + ": master differs");
  if (!SameBits(got_bias, want_bias)) Fail(__FILE__, __LINE__, what + ": bias differs");
  if (got_q != want_q) Fail(__FILE__, __LINE__, what + ": filter_q differs");
  if (got_bias_q != want_bias_q) Fail(__FILE__, __LINE__, what + ": bias_q differs");
  if (c.filter && !c.zero_grad && got_master == master0) {
    Fail(__FILE__, __LINE__, what + ": the master did not move");
  }
}

void TestInvertedResidualUpdateEqualsChain() {
  const UpdateCase cases[] = {
      {"k3_s1_same_subset_all_masks_b2", 2, 7, 6, 3, 8, 4, 3, 1, Padding::kSame, "subset", 3,
       true, true, true, true, true, true, false},
      {"k3_s2_same_odd_subset_b2", 2, 9, 7, 4, 12, 5, 3, 2, Padding::kSame, "subset", 4,
       false, true, true, true, true, true, false},
      {"k3_s2_same_even_list_full_input", 1, 8, 8, 3, 6, 3, 3, 2, Padding::kSame, "list", 2,
       false, true, true, true, true, true, false},
      {"k3_s1_valid_all_channels_no_qas_b2", 2, 8, 7, 3, 6, 4, 3, 1, Padding::kValid, "all",
       0, false, true, true, true, true, false, false},
      {"k3_s2_valid_even_skips_rows", 2, 8, 8, 2, 6, 3, 3, 2, Padding::kValid, "subset", 2,
       true, true, true, true, true, true, false},
      {"k5_s2_same_b2", 2, 11, 9, 3, 8, 4, 5, 2, Padding::kSame, "subset", 3, false, true,
       true, true, true, true, false},
      {"k3_s1_same_filter_only_linear", 1, 6, 6, 3, 6, 4, 3, 1, Padding::kSame, "subset", 2,
       false, false, false, true, false, true, false},
      {"k3_s1_same_bias_only", 2, 5, 5, 3, 6, 4, 3, 1, Padding::kSame, "all", 0, false, true,
       true, false, true, true, false},
      {"k3_s1_same_zero_grad_skips_step", 1, 5, 5, 3, 6, 4, 3, 1, Padding::kSame, "subset", 2,
       false, true, true, true, true, true, true},
      {"one_row_output", 2, 3, 5, 2, 4, 3, 3, 2, Padding::kValid, "subset", 1, true, true,
       true, true, true, true, false},
      {"project_in_subset_k3_s2_all_masks_b2", 2, 9, 7, 4, 12, 5, 3, 2, Padding::kSame,
       "subset", 4, true, true, true, true, true, true, false, "in_subset", 3, true},
      {"project_in_list_k3_s1_no_qas", 1, 7, 6, 3, 8, 4, 3, 1, Padding::kSame, "subset", 3,
       false, true, true, true, true, false, false, "in_list", 2, true},
      {"project_in_all_filter_only", 2, 6, 6, 3, 6, 3, 3, 2, Padding::kValid, "list", 2, true,
       true, true, true, false, true, false, "in_all", 0, false},
      {"project_out_list_b2", 2, 8, 8, 2, 6, 4, 3, 2, Padding::kSame, "subset", 2, true,
       true, true, true, true, true, false, "out_list", 2, true},
      {"project_out_all_dw_bias_only", 1, 5, 5, 3, 6, 4, 3, 1, Padding::kSame, "all", 0, false,
       true, true, false, true, true, false, "out_all", 0, true},
      {"project_bias_only", 2, 5, 5, 3, 6, 4, 3, 1, Padding::kSame, "subset", 2, true, true,
       true, true, true, true, false, "bias", 0, true},
      {"project_zero_grad_skips_step", 1, 5, 5, 3, 6, 4, 3, 1, Padding::kSame, "subset", 2,
       false, true, true, true, true, true, true, "in_subset", 2, true},
      {"frozen_depthwise_trained_project", 1, 7, 7, 3, 8, 4, 3, 2, Padding::kSame, "all", 0,
       true, true, true, false, false, true, false, "in_subset", 3, true},
  };
  uint32_t seed = 101;
  for (const UpdateCase& c : cases) {
    for (bool by_channel : {false, true}) {
      for (bool stops : {false, true}) CheckUpdateAgainstChain(c, seed, by_channel, stops);
    }
    ++seed;
  }
}

template <typename T>
std::vector<T> OptionalTensor(const GoldenCase& c, const std::string& name) {
  return c.has_tensor(name) ? c.tensor(name).As<T>() : std::vector<T>();
}

template <typename T>
T* DataOrNull(std::vector<T>& v) {
  return v.empty() ? nullptr : v.data();
}

// The golden through InvertedResidualUpdate (float outputs within tolerance,
// integer ones exact), and the same inputs through the unfused reference
// chain, which must give the fused op's results bit for bit.
void TestInvertedResidualUpdateGoldens(const std::string& dir, bool by_channel) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/inverted_residual_update.golden")) {
    const std::string what = "inverted_residual_update/" + c.name + Order(by_channel);
    const auto& dy_t = c.tensor("grad_output");
    const auto& dw_t = c.tensor("depthwise_filter");
    const auto& want_t = c.tensor("expected_grad_input");
    reference::InvertedResidualInputGradShape s{};
    s.batch = want_t.dim(0);
    s.in_h = want_t.dim(1);
    s.in_w = want_t.dim(2);
    s.in_c = want_t.dim(3);
    s.expanded_c = dw_t.dim(3);
    s.out_h = dy_t.dim(1);
    s.out_w = dy_t.dim(2);
    s.out_c = dy_t.dim(3);
    s.filter_h = dw_t.dim(1);
    s.filter_w = dw_t.dim(2);
    s.stride_h = static_cast<int32_t>(c.param("stride_h"));
    s.stride_w = static_cast<int32_t>(c.param("stride_w"));
    const Padding padding = c.param("padding") != 0 ? Padding::kSame : Padding::kValid;
    s.pad_top = reference::ConvPaddingBefore(padding, s.in_h, s.filter_h, s.stride_h, s.out_h);
    s.pad_left =
        reference::ConvPaddingBefore(padding, s.in_w, s.filter_w, s.stride_w, s.out_w);
    s.has_expand = true;
    s.by_channel = by_channel;
    const auto dy = dy_t.AsFloat();
    const auto project = c.tensor("project_filter").As<int8_t>();
    const auto project_scales = c.tensor("project_filter_scales").AsFloat();
    const auto dw_q0 = dw_t.As<int8_t>();
    const auto dw_scales = c.tensor("depthwise_filter_scales").AsFloat();
    const auto expand = c.tensor("expand_filter").As<int8_t>();
    const auto expand_scales = c.tensor("expand_filter_scales").AsFloat();
    std::vector<uint8_t> m_out, m_dw, m_exp;
    const reference::InvertedResidualGradMasks masks = {
        OptionalMask(c, "grad_output_mask", &m_out), OptionalMask(c, "depthwise_mask", &m_dw),
        OptionalMask(c, "expand_mask", &m_exp)};
    const auto x = OptionalTensor<int8_t>(c, "input");
    auto channels = OptionalTensor<int32_t>(c, "channels");
    const auto master0 = OptionalTensor<float>(c, "filter");
    const auto bias0 = OptionalTensor<float>(c, "bias");
    const auto bias_q0 = OptionalTensor<int32_t>(c, "bias_q");
    const auto bias_scales = OptionalTensor<float>(c, "bias_q_scales");
    const bool trains_filter = !master0.empty();
    const int32_t e_c = s.expanded_c;
    const int32_t num_channels =
        !trains_filter ? 0
                       : (c.has_tensor("channels") ? static_cast<int32_t>(channels.size()) : e_c);
    const int32_t input_depth = trains_filter ? c.tensor("input").dim(3) : 0;
    reference::ActivationQuantization quant = reference::kNoQuantization;
    if (trains_filter) {
      quant = {static_cast<float>(c.param("input_scale")),
               static_cast<int32_t>(c.param("input_zero_point"))};
    }
    const reference::SgdOptions sgd = {static_cast<float>(c.param("learning_rate")),
                                       c.param("qas") != 0};
    const int32_t* chan = c.has_tensor("channels") ? channels.data() : nullptr;
    // The project's update (cases with project_channel_axis).
    const bool trains_project = c.param_or("project_channel_axis", -1) >= 0;
    const int32_t p_axis = static_cast<int32_t>(c.param_or("project_channel_axis", 0));
    const auto px = OptionalTensor<int8_t>(c, "project_input");
    auto p_channels = OptionalTensor<int32_t>(c, "project_channels");
    const auto p_master0 = OptionalTensor<float>(c, "project_master");
    const auto p_bias0 = OptionalTensor<float>(c, "project_bias");
    const auto p_bias_q0 = OptionalTensor<int32_t>(c, "project_bias_q");
    const auto p_bias_scales = OptionalTensor<float>(c, "project_bias_q_scales");
    const bool p_filter = !p_master0.empty();
    const int32_t p_axis_size = p_axis == 0 ? s.out_c : e_c;
    const int32_t p_num =
        !p_filter ? 0
                  : (c.has_tensor("project_channels") ? static_cast<int32_t>(p_channels.size())
                                                      : p_axis_size);
    reference::ActivationQuantization p_quant = reference::kNoQuantization;
    if (p_filter) {
      p_quant = {static_cast<float>(c.param("project_input_scale")),
                 static_cast<int32_t>(c.param("project_input_zero_point"))};
    }
    const int32_t p_depth = p_filter ? c.tensor("project_input").dim(3) : 0;
    const int32_t* p_chan = DataOrNull(p_channels);

    auto got_q = dw_q0;
    auto got_master = master0, got_bias = bias0;
    auto got_bias_q = bias_q0;
    reference::InvertedResidualDepthwiseUpdate u{};
    u.input = trains_filter ? x.data() : nullptr;
    u.quant = quant;
    u.input_depth = input_depth;
    u.channels = chan;
    u.num_channels = num_channels;
    u.sgd = sgd;
    u.params = {DataOrNull(got_master), trains_filter ? got_q.data() : nullptr,
                dw_scales.data(), DataOrNull(got_bias), DataOrNull(got_bias_q),
                bias_scales.empty() ? nullptr : bias_scales.data()};
    std::vector<float> scratch(
        static_cast<size_t>(reference::InvertedResidualUpdateScratchFloats(s, num_channels)),
        9.0f);
    const auto want = want_t.AsFloat();
    std::vector<float> got(want.size(), 9.0f);
    auto got_pq = project;
    auto got_p_master = p_master0, got_p_bias = p_bias0;
    auto got_p_bias_q = p_bias_q0;
    reference::InvertedResidualProjectUpdate pu{};
    pu.input = p_filter ? px.data() : nullptr;
    pu.quant = p_quant;
    pu.input_depth = p_depth;
    pu.channels = p_chan;
    pu.num_channels = p_num;
    pu.channel_axis = p_axis;
    pu.params = {DataOrNull(got_p_master), p_filter ? got_pq.data() : nullptr,
                 project_scales.data(), DataOrNull(got_p_bias), DataOrNull(got_p_bias_q),
                 p_bias_scales.empty() ? nullptr : p_bias_scales.data()};
    TL_EXPECT(reference::InvertedResidualUpdate(
        s, dy.data(), {got_pq.data(), project_scales.data()},
        {got_q.data(), dw_scales.data()}, {expand.data(), expand_scales.data()}, masks, u,
        got.data(), scratch.data(), trains_project ? &pu : nullptr));
    TL_EXPECT_CLOSE(got, want, kRtol, Atol(want), what + " grad_input");
    if (p_filter) {
      const auto want_p_master = c.tensor("expected_project_master").AsFloat();
      TL_EXPECT_CLOSE(got_p_master, want_p_master, kRtol, Atol(want_p_master),
                      what + " project_master");
      TL_EXPECT(got_pq == c.tensor("expected_project_filter").As<int8_t>());
    }
    if (!p_bias0.empty()) {
      const auto want_p_bias = c.tensor("expected_project_bias").AsFloat();
      TL_EXPECT_CLOSE(got_p_bias, want_p_bias, kRtol, Atol(want_p_bias), what + " project_bias");
      TL_EXPECT(got_p_bias_q == c.tensor("expected_project_bias_q").As<int32_t>());
    }
    if (trains_filter) {
      const auto want_master = c.tensor("expected_filter").AsFloat();
      TL_EXPECT_CLOSE(got_master, want_master, kRtol, Atol(want_master), what + " filter");
      TL_EXPECT(got_q == c.tensor("expected_depthwise_filter").As<int8_t>());
    }
    if (!bias0.empty()) {
      const auto want_bias = c.tensor("expected_bias").AsFloat();
      TL_EXPECT_CLOSE(got_bias, want_bias, kRtol, Atol(want_bias), what + " bias");
      TL_EXPECT(got_bias_q == c.tensor("expected_bias_q").As<int32_t>());
    }

    // The unfused chain on the same inputs.
    ConvGeometry dw_g{}, project_g{}, expand_g{};
    TL_EXPECT(reference::MakeConvGeometry(s.batch, s.in_h, s.in_w, e_c, e_c, s.filter_h,
                                          s.filter_w, s.stride_h, s.stride_w, padding,
                                          &dw_g));
    TL_EXPECT(reference::MakeConvGeometry(s.batch, s.out_h, s.out_w, e_c, s.out_c, 1, 1, 1,
                                          1, Padding::kValid, &project_g));
    TL_EXPECT(reference::MakeConvGeometry(s.batch, s.in_h, s.in_w, s.in_c, e_c, 1, 1, 1, 1,
                                          Padding::kValid, &expand_g));
    std::vector<float> dz(static_cast<size_t>(s.batch * s.out_h * s.out_w * e_c));
    std::vector<float> de(static_cast<size_t>(s.batch * s.in_h * s.in_w * e_c));
    std::vector<float> chain(want.size());
    auto q = dw_q0;
    auto master = master0, bias = bias0;
    auto bias_q = bias_q0;
    auto pq = project;
    auto p_master = p_master0, p_bias = p_bias0;
    auto p_bias_q = p_bias_q0;
    reference::ConvInputGrad<int8_t>(project_g, dy.data(), pq.data(), project_scales.data(),
                                     dz.data(), masks.grad_output);
    const reference::TrainedParameters pp = {
        DataOrNull(p_master), p_filter ? pq.data() : nullptr, project_scales.data(),
        DataOrNull(p_bias), DataOrNull(p_bias_q),
        p_bias_scales.empty() ? nullptr : p_bias_scales.data()};
    if (p_filter) {
      TL_EXPECT(reference::ConvUpdate<int8_t>(project_g, dy.data(), masks.grad_output,
                                              px.data(), p_quant, p_depth, p_chan, p_num,
                                              p_axis, sgd, pp));
    } else if (!p_bias0.empty()) {
      reference::BiasUpdate(dy.data(), masks.grad_output, s.batch * s.out_h * s.out_w,
                            s.out_c, sgd, pp);
    }
    reference::DepthwiseInputGrad<int8_t>(dw_g, dz.data(), q.data(), dw_scales.data(),
                                          de.data(), masks.depthwise);
    const reference::TrainedParameters p = {
        DataOrNull(master), trains_filter ? q.data() : nullptr, dw_scales.data(),
        DataOrNull(bias), DataOrNull(bias_q),
        bias_scales.empty() ? nullptr : bias_scales.data()};
    if (trains_filter) {
      TL_EXPECT(reference::DepthwiseUpdate<int8_t>(dw_g, dz.data(), masks.depthwise, x.data(),
                                                   quant, input_depth, chan, num_channels,
                                                   sgd, p));
    } else if (!bias0.empty()) {
      reference::BiasUpdate(dz.data(), masks.depthwise, s.batch * s.out_h * s.out_w, e_c,
                            sgd, p);
    }
    reference::ConvInputGrad<int8_t>(expand_g, de.data(), expand.data(),
                                     expand_scales.data(), chain.data(), masks.expand);
    if (!SameBits(got, chain) || !SameBits(got_master, master) || !SameBits(got_bias, bias) ||
        got_q != q || got_bias_q != bias_q || !SameBits(got_p_master, p_master) ||
        !SameBits(got_p_bias, p_bias) || got_pq != pq || got_p_bias_q != p_bias_q) {
      Fail(__FILE__, __LINE__, what + ": not bit-identical to the unfused reference chain");
    }
  }
}

// The order with less scratch: by channel for MobileNetV2's 4x4 tail blocks
// (a ring of three dz rows is 3/4 of the map), by rows for its 64x64 head
// (one channel's planes are larger than three rows of 16 channels).
void TestInvertedResidualGradOrder() {
  reference::InvertedResidualInputGradShape s{};
  s.batch = 1;
  s.in_h = s.in_w = s.out_h = s.out_w = 4;
  s.in_c = s.out_c = 56;
  s.expanded_c = 336;
  s.filter_h = s.filter_w = 3;
  s.stride_h = s.stride_w = 1;
  s.pad_top = s.pad_left = 1;
  s.has_expand = true;
  reference::ChooseInvertedResidualGradOrder(&s);
  TL_EXPECT(s.by_channel);
  TL_EXPECT(reference::InvertedResidualInputGradScratchFloats(s) == 4 * 4 + 4 * 4);
  s.by_channel = false;
  TL_EXPECT(reference::InvertedResidualInputGradScratchFloats(s) == (3 * 4 + 4) * 336);
  s.in_h = s.in_w = s.out_h = s.out_w = 64;
  s.in_c = 16;
  s.out_c = 8;
  s.expanded_c = 16;
  reference::ChooseInvertedResidualGradOrder(&s);
  TL_EXPECT(!s.by_channel);
  TL_EXPECT(reference::InvertedResidualInputGradScratchFloats(s) == (3 * 64 + 64) * 16);
  // Stopping at the depthwise: one dz row (64 * 16) or one plane (64 * 64).
  s.stops_at_depthwise = true;
  reference::ChooseInvertedResidualGradOrder(&s);
  TL_EXPECT(!s.by_channel);
  TL_EXPECT(reference::InvertedResidualInputGradScratchFloats(s) == 64 * 16);
}

}  // namespace

void RunInvertedResidualGradTests(const std::string& testdata_dir) {
  TestInvertedResidualGradOrder();
  TestInvertedResidualInputGradEqualsChain();
  for (bool by_channel : {false, true}) {
    TestInvertedResidualInputGradGoldens(testdata_dir, by_channel);
    TestInvertedResidualUpdateGoldens(testdata_dir, by_channel);
  }
  TestInvertedResidualUpdateEqualsChain();
}

}  // namespace testing
}  // namespace tflite_tl
