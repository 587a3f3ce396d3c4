// Checks every reference kernel against the TensorFlow goldens in
// tflm_kernels/testdata/, plus the edge cases goldens cannot express
// (rejected arguments, aliasing, fused vs. unfused bit-equality).
//
// Usage: kernels_test [testdata_dir]   (default: tflm_kernels/testdata)
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <string>
#include <vector>

#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/bias_grad.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/conv_input_grad.h"
#include "tflm_kernels/reference/conv_weight_grad.h"
#include "tflm_kernels/reference/depthwise_input_grad.h"
#include "tflm_kernels/reference/depthwise_weight_grad.h"
#include "tflm_kernels/reference/sgd.h"
#include "tflm_kernels/tests/golden_reader.h"
#include "tflm_kernels/tests/kernel_tests.h"
#include "tflm_kernels/tests/test_harness.h"

namespace tflite_tl {
namespace {

using reference::ActivationQuantization;
using reference::ConvGeometry;
using reference::Padding;
using testing::Atol;
using testing::GoldenCase;
using testing::kRtol;
using testing::MaskOrNull;
using testing::Nhwc;
using testing::OptionalMask;
using testing::ReadGoldenCases;

// Geometry of a golden conv case; in/out channels come from the tensors.
ConvGeometry Geometry(const GoldenCase& c, int32_t batch, int32_t in_h,
                      int32_t in_w, int32_t in_c, int32_t out_c) {
  ConvGeometry g{};
  const bool ok = reference::MakeConvGeometry(
      batch, in_h, in_w, in_c, out_c, static_cast<int32_t>(c.param("filter_h")),
      static_cast<int32_t>(c.param("filter_w")),
      static_cast<int32_t>(c.param("stride_h")),
      static_cast<int32_t>(c.param("stride_w")),
      c.param("padding") != 0 ? Padding::kSame : Padding::kValid, &g,
      static_cast<int32_t>(c.param_or("groups", 1)));
  TL_EXPECT(ok);
  return g;
}

ActivationQuantization InputQuantization(const GoldenCase& c) {
  return ActivationQuantization{static_cast<float>(c.param("input_scale")),
                                static_cast<int32_t>(c.param("input_zero_point"))};
}

void TestConvWeightGrad(const std::string& dir) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/conv_weight_grad.golden")) {
    const auto& in = c.tensor("input");
    const auto& go = c.tensor("grad_output");
    const ConvGeometry g =
        Geometry(c, in.dim(0), in.dim(1), in.dim(2), in.dim(3), go.dim(3));
    TL_EXPECT(g.out_h == go.dim(1) && g.out_w == go.dim(2));
    const auto channels = c.tensor("channels").As<int32_t>();
    const auto want = c.tensor("expected_grad_filter").AsFloat();
    // One sentinel past the end catches writes beyond K rows.
    std::vector<float> got(want.size() + 1, 123.0f);
    const auto grad_output = go.AsFloat();
    const int32_t k = static_cast<int32_t>(channels.size());
    if (in.dtype == "i8") {  // a saved int8 activation
      const auto input = in.As<int8_t>();
      const ActivationQuantization quant = InputQuantization(c);
      TL_EXPECT(reference::ConvWeightGradSparse<int8_t>(
          g, input.data(), quant, grad_output.data(), channels.data(), k,
          got.data()));
    } else {
      const auto input = in.AsFloat();
      TL_EXPECT(reference::ConvWeightGradSparse(g, input.data(), grad_output.data(),
                                                channels.data(), k, got.data()));
    }
    TL_EXPECT(got.back() == 123.0f);
    got.pop_back();
    TL_EXPECT_CLOSE(got, want, kRtol, Atol(want), "conv_weight_grad/" + c.name);
  }
}

void TestConvWeightGradRejectsBadChannel() {
  ConvGeometry g{};
  TL_EXPECT(reference::MakeConvGeometry(1, 3, 3, 1, 2, 1, 1, 1, 1,
                                        Padding::kValid, &g));
  const std::vector<float> input(9, 1.0f), grad_output(18, 1.0f);
  std::vector<float> out(2, 7.0f);
  const int32_t bad[] = {1, 2};
  TL_EXPECT(!reference::ConvWeightGradSparse(g, input.data(), grad_output.data(),
                                             bad, 2, out.data()));
  const int32_t negative[] = {-1};
  TL_EXPECT(!reference::ConvWeightGradSparse(
      g, input.data(), grad_output.data(), negative, 1, out.data()));
  TL_EXPECT(out[0] == 7.0f && out[1] == 7.0f);  // nothing written
}

void TestConvInputGrad(const std::string& dir) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/conv_input_grad.golden")) {
    // [N, C] tensors are the FULLY_CONNECTED form: [N, 1, 1, C].
    const auto go = Nhwc(c.tensor("grad_output"));
    const auto& expected = c.tensor("expected_grad_input");
    const auto gi = Nhwc(expected);
    const ConvGeometry g = Geometry(c, gi[0], gi[1], gi[2], gi[3], go[3]);
    TL_EXPECT(g.out_h == go[1] && g.out_w == go[2]);
    const auto filter = c.tensor("filter").As<int8_t>();
    const auto scales = c.tensor("scales").AsFloat();
    const auto grad_output = c.tensor("grad_output").AsFloat();
    const auto mask = OptionalMask(c);  // the layer's ReLU6 mask, if any
    const auto want = expected.AsFloat();
    std::vector<float> got(want.size(), 99.0f);
    reference::ConvInputGrad<int8_t>(g, grad_output.data(), filter.data(),
                                     scales.data(), got.data(), MaskOrNull(mask));
    TL_EXPECT_CLOSE(got, want, kRtol, Atol(want), "conv_input_grad/" + c.name);

    // A float filter holding the dequantized weights gives the same result.
    std::vector<float> dequantized(filter.size());
    const size_t row = filter.size() / scales.size();
    for (size_t i = 0; i < filter.size(); ++i) {
      dequantized[i] = static_cast<float>(filter[i]) * scales[i / row];
    }
    std::vector<float> got_float(want.size());
    reference::ConvInputGrad<float>(g, grad_output.data(), dequantized.data(),
                                    nullptr, got_float.data(), MaskOrNull(mask));
    TL_EXPECT_CLOSE(got_float, want, kRtol, Atol(want),
                    "conv_input_grad(float filter)/" + c.name);
    if (!mask.empty()) {  // the on-the-fly mask equals masking beforehand
      auto masked = grad_output;
      reference::ApplyActivationMask(masked.data(), mask.data(),
                                     static_cast<int32_t>(masked.size()), masked.data());
      std::vector<float> got_premasked(want.size());
      reference::ConvInputGrad<int8_t>(g, masked.data(), filter.data(), scales.data(),
                                       got_premasked.data());
      TL_EXPECT(got_premasked == got);
    }
  }
}

void TestDepthwiseWeightGrad(const std::string& dir) {
  for (const GoldenCase& c :
       ReadGoldenCases(dir + "/depthwise_weight_grad.golden")) {
    const auto& in = c.tensor("input");
    const auto& go = c.tensor("grad_output");
    const ConvGeometry g =
        Geometry(c, in.dim(0), in.dim(1), in.dim(2), in.dim(3), go.dim(3));
    TL_EXPECT(go.dim(3) == in.dim(3) * static_cast<int32_t>(c.param("depth_multiplier")));
    const auto grad_output = go.AsFloat();
    const auto want = c.tensor("expected_grad_filter").AsFloat();
    std::vector<float> got(want.size(), 5.0f);
    if (in.dtype == "i8") {
      const auto input = in.As<int8_t>();
      reference::DepthwiseWeightGrad<int8_t>(g, input.data(), InputQuantization(c),
                                             grad_output.data(), got.data());
    } else {
      const auto input = in.AsFloat();
      reference::DepthwiseWeightGrad(g, input.data(), grad_output.data(), got.data());
    }
    TL_EXPECT_CLOSE(got, want, kRtol, Atol(want), "depthwise_weight_grad/" + c.name);
  }
}

void TestDepthwiseInputGrad(const std::string& dir) {
  for (const GoldenCase& c :
       ReadGoldenCases(dir + "/depthwise_input_grad.golden")) {
    const auto& go = c.tensor("grad_output");
    const auto& expected = c.tensor("expected_grad_input");
    const ConvGeometry g = Geometry(c, expected.dim(0), expected.dim(1),
                                    expected.dim(2), expected.dim(3), go.dim(3));
    const auto filter = c.tensor("filter").As<int8_t>();
    const auto scales = c.tensor("scales").AsFloat();
    const auto grad_output = go.AsFloat();
    const auto mask = OptionalMask(c);
    const auto want = expected.AsFloat();
    std::vector<float> got(want.size(), 5.0f);
    reference::DepthwiseInputGrad<int8_t>(g, grad_output.data(), filter.data(),
                                          scales.data(), got.data(), MaskOrNull(mask));
    TL_EXPECT_CLOSE(got, want, kRtol, Atol(want), "depthwise_input_grad/" + c.name);
    if (!mask.empty()) {
      auto masked = grad_output;
      reference::ApplyActivationMask(masked.data(), mask.data(),
                                     static_cast<int32_t>(masked.size()), masked.data());
      std::vector<float> got_premasked(want.size());
      reference::DepthwiseInputGrad<int8_t>(g, masked.data(), filter.data(),
                                            scales.data(), got_premasked.data());
      TL_EXPECT(got_premasked == got);
    }
  }
}

void TestBiasGrad(const std::string& dir) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/bias_grad.golden")) {
    const auto& go = c.tensor("grad_output");
    const int32_t channels = go.shape.back();
    const int32_t rows = static_cast<int32_t>(go.values.size()) / channels;
    const auto grad_output = go.AsFloat();
    const auto want = c.tensor("expected_grad_bias").AsFloat();
    std::vector<float> got(want.size(), 3.0f);
    reference::BiasGrad(grad_output.data(), rows, channels, got.data());
    TL_EXPECT_CLOSE(got, want, kRtol, Atol(want), "bias_grad/" + c.name);

    const float lr = static_cast<float>(c.param("learning_rate"));
    auto bias = c.tensor("bias").AsFloat();
    std::vector<float> fused_grad(want.size());
    reference::BiasGradFusedSgd(grad_output.data(), rows, channels, lr,
                                bias.data(), fused_grad.data());
    // Same summation order: bit-identical to the unfused kernel.
    TL_EXPECT(fused_grad == got);
    const auto want_bias = c.tensor("expected_bias").AsFloat();
    TL_EXPECT_CLOSE(bias, want_bias, kRtol, Atol(want_bias),
                    "bias_grad fused sgd/" + c.name);
    // Without the optional gradient output the update is the same.
    auto bias2 = c.tensor("bias").AsFloat();
    reference::BiasGradFusedSgd(grad_output.data(), rows, channels, lr,
                                bias2.data(), nullptr);
    TL_EXPECT(bias2 == bias);
  }
}

void TestActivationMask(const std::string& dir) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/activation_mask.golden")) {
    const auto x = c.tensor("x").AsFloat();
    const int32_t size = static_cast<int32_t>(x.size());
    const float upper = c.param("relu6") != 0
                            ? 6.0f
                            : std::numeric_limits<float>::infinity();
    const auto want_mask = c.tensor("expected_mask").As<uint8_t>();
    TL_EXPECT(static_cast<int32_t>(want_mask.size()) == reference::MaskBytes(size));
    std::vector<uint8_t> mask(want_mask.size(), 0xAB);
    reference::PackActivationMask<float, float>(x.data(), size, 0.0f, upper,
                                                mask.data());
    TL_EXPECT(mask == want_mask);

    const auto grad_output = c.tensor("grad_output").AsFloat();
    const auto want = c.tensor("expected_grad_input").AsFloat();
    std::vector<float> got(want.size());
    reference::ApplyActivationMask(grad_output.data(), mask.data(), size, got.data());
    TL_EXPECT(got == want);  // a select: exact
    auto in_place = grad_output;
    reference::ApplyActivationMask(in_place.data(), mask.data(), size, in_place.data());
    TL_EXPECT(in_place == want);
  }
}

void TestActivationMaskInt8() {
  // Quantized ReLU6 output with zero point -128 and scale 6/255: the linear
  // range is (-128, 127) exclusive.
  const int8_t x[] = {-128, -127, 0, 126, 127, 5, -128, 127, 1};
  uint8_t mask[2] = {0xFF, 0xFF};
  reference::PackActivationMask<int8_t, int32_t>(x, 9, -128, 127, mask);
  TL_EXPECT(mask[0] == 0x2E);  // bits 1, 2, 3, 5
  TL_EXPECT(mask[1] == 0x01);  // bit 8
}

void TestSgd(const std::string& dir) {
  for (const GoldenCase& c : ReadGoldenCases(dir + "/sgd.golden")) {
    auto w = c.tensor("weights").AsFloat();
    const int32_t size = static_cast<int32_t>(w.size());
    const float lr = static_cast<float>(c.param("learning_rate"));
    const float momentum = static_cast<float>(c.param("momentum"));
    std::vector<float> velocity(w.size(), 0.0f);
    for (int step = 1; step <= 2; ++step) {
      const auto g = c.tensor("grad_" + std::to_string(step)).AsFloat();
      if (momentum != 0.0f) {
        reference::SgdMomentumUpdate(g.data(), size, lr, momentum,
                                     velocity.data(), w.data());
        const auto want_v =
            c.tensor("expected_velocity_" + std::to_string(step)).AsFloat();
        TL_EXPECT_CLOSE(velocity, want_v, 1e-6, 1e-7, "sgd velocity/" + c.name);
      } else {
        reference::SgdUpdate(g.data(), size, lr, w.data());
      }
      const auto want = c.tensor("expected_weights_" + std::to_string(step)).AsFloat();
      TL_EXPECT_CLOSE(w, want, 1e-6, 1e-7, "sgd weights/" + c.name);
    }
  }
}

void TestGeometry() {
  using reference::ConvOutputSize;
  TL_EXPECT(ConvOutputSize(Padding::kSame, 7, 3, 2) == 4);
  TL_EXPECT(ConvOutputSize(Padding::kValid, 7, 3, 2) == 3);
  TL_EXPECT(ConvOutputSize(Padding::kValid, 2, 3, 1) == 0);
  TL_EXPECT(ConvOutputSize(Padding::kSame, 5, 3, 0) == 0);
  ConvGeometry g{};
  TL_EXPECT(!reference::MakeConvGeometry(1, 2, 2, 1, 1, 3, 3, 1, 1,
                                         Padding::kValid, &g));
  TL_EXPECT(reference::MakeConvGeometry(1, 8, 8, 1, 1, 3, 3, 2, 2,
                                        Padding::kSame, &g));
  // TF SAME: total padding 1 on an even input at stride 2 goes bottom/right.
  TL_EXPECT(g.pad_top == 0 && g.pad_left == 0 && g.out_h == 4);
  TL_EXPECT(g.groups == 1);
  // Channels must split evenly into groups.
  TL_EXPECT(!reference::MakeConvGeometry(1, 4, 4, 6, 4, 3, 3, 1, 1,
                                         Padding::kSame, &g, 4));
  TL_EXPECT(reference::MakeConvGeometry(1, 4, 4, 8, 4, 3, 3, 1, 1,
                                        Padding::kSame, &g, 4));
}

}  // namespace
}  // namespace tflite_tl

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "tflm_kernels/testdata";
  try {
    tflite_tl::TestGeometry();
    tflite_tl::TestConvWeightGrad(dir);
    tflite_tl::TestConvWeightGradRejectsBadChannel();
    tflite_tl::TestConvInputGrad(dir);
    tflite_tl::TestDepthwiseWeightGrad(dir);
    tflite_tl::TestDepthwiseInputGrad(dir);
    tflite_tl::TestBiasGrad(dir);
    tflite_tl::TestActivationMask(dir);
    tflite_tl::TestActivationMaskInt8();
    tflite_tl::TestSgd(dir);
    tflite_tl::testing::RunUpdateKernelTests(dir);
    tflite_tl::testing::RunLayerKernelTests(dir);
    tflite_tl::testing::RunInvertedResidualGradTests(dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  const int failures = tflite_tl::testing::FailureCount();
  if (failures != 0) {
    std::fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("all kernel tests passed\n");
  return 0;
}
