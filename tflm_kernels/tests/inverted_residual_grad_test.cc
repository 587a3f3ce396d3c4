// InvertedResidualInputGrad against the three-op chain it replaces
// (ConvInputGrad -> DepthwiseInputGrad -> ConvInputGrad), bit for bit, on
// pseudo-random data: strides 1 and 2, SAME and VALID, odd sizes, kernels 3
// and 5, with and without expand conv and each mask, batch 2; and against
// the float64 goldens of inverted_residual_input_grad.golden.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/conv_input_grad.h"
#include "tflm_kernels/reference/depthwise_input_grad.h"
#include "tflm_kernels/reference/inverted_residual_input_grad.h"
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

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void CheckAgainstChain(const GradCase& c, uint32_t seed) {
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
  std::vector<float> scratch(
      static_cast<size_t>(reference::InvertedResidualInputGradScratchFloats(s)), 9.0f);
  std::vector<float> got(static_cast<size_t>(in_size), 9.0f);
  const reference::InvertedResidualGradMasks masks = {m_out, m_dw, m_exp};
  reference::InvertedResidualInputGrad(
      s, dy.data(), {project.data(), project_scales.data()},
      {dw.data(), dw_scales.data()}, {expand.data(), expand_scales.data()}, masks,
      got.data(), scratch.data());
  if (!SameBits(got, want)) {
    Fail(__FILE__, __LINE__, std::string("inverted_residual_input_grad/") + c.name +
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
  for (const GradCase& c : cases) CheckAgainstChain(c, seed++);
}

const uint8_t* OptionalMask(const GoldenCase& c, const std::string& name,
                            std::vector<uint8_t>* storage) {
  if (!c.has_tensor(name)) return nullptr;
  *storage = c.tensor(name).As<uint8_t>();
  return storage->data();
}

void TestInvertedResidualInputGradGoldens(const std::string& dir) {
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
    TL_EXPECT_CLOSE(got, want, kRtol, Atol(want), "inverted_residual_input_grad/" + c.name);
  }
}

}  // namespace

void RunInvertedResidualGradTests(const std::string& testdata_dir) {
  TestInvertedResidualInputGradEqualsChain();
  TestInvertedResidualInputGradGoldens(testdata_dir);
}

}  // namespace testing
}  // namespace tflite_tl
