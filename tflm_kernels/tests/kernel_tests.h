// Test suites of the reference kernels, one function per source file; the
// main() in kernels_test.cc runs them all. Host test code only.
#ifndef TFLM_KERNELS_TESTS_KERNEL_TESTS_H_
#define TFLM_KERNELS_TESTS_KERNEL_TESTS_H_

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "tflm_kernels/tests/golden_reader.h"

namespace tflite_tl {
namespace testing {

// Float32 sums of a few hundred products against float64 truth.
constexpr double kRtol = 1e-5;

inline double MaxAbs(const std::vector<float>& v) {
  double m = 0.0;
  for (float x : v) m = std::fmax(m, std::fabs(static_cast<double>(x)));
  return m;
}

inline double Atol(const std::vector<float>& want) {
  return 1e-5 * (1.0 + MaxAbs(want));
}

// The 4-D view of a golden tensor: rank 4 as is, [N, C] as [N, 1, 1, C]
// (the FULLY_CONNECTED form the kernels accept for NHWC / OHWI tensors).
struct Dims4 {
  int32_t d[4];
  int32_t operator[](int i) const { return d[i]; }
};
inline Dims4 Nhwc(const GoldenTensor& t) {
  if (t.shape.size() == 2) return {{t.shape[0], 1, 1, t.shape[1]}};
  if (t.shape.size() != 4) throw std::runtime_error("expected a rank-2 or rank-4 tensor");
  return {{t.shape[0], t.shape[1], t.shape[2], t.shape[3]}};
}

// The golden's optional packed mask, or an empty vector (data() is then
// replaced by null with MaskOrNull).
inline std::vector<uint8_t> OptionalMask(const GoldenCase& c) {
  return c.has_tensor("mask") ? c.tensor("mask").As<uint8_t>() : std::vector<uint8_t>();
}
inline const uint8_t* MaskOrNull(const std::vector<uint8_t>& mask) {
  return mask.empty() ? nullptr : mask.data();
}

void RunUpdateKernelTests(const std::string& testdata_dir);
void RunLayerKernelTests(const std::string& testdata_dir);
void RunInvertedResidualGradTests(const std::string& testdata_dir);

}  // namespace testing
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_TESTS_KERNEL_TESTS_H_
