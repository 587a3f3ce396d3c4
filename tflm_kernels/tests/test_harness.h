// A minimal test harness: checks count failures and print where they happened.
// Host test code only (no gtest, so the tests build with nothing but a C++17
// compiler, with or without sanitizers, and under Bazel offline).
#ifndef TFLM_KERNELS_TESTS_TEST_HARNESS_H_
#define TFLM_KERNELS_TESTS_TEST_HARNESS_H_

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace tflite_tl {
namespace testing {

inline int& FailureCount() {
  static int failures = 0;
  return failures;
}

inline void Fail(const char* file, int line, const std::string& what) {
  ++FailureCount();
  std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
}

// Element-wise |got - want| <= atol + rtol * |want|; reports the first
// mismatch and the worst error.
inline bool AllClose(const std::vector<float>& got,
                     const std::vector<float>& want, double rtol, double atol,
                     const std::string& what, const char* file, int line) {
  if (got.size() != want.size()) {
    Fail(file, line, what + ": size " + std::to_string(got.size()) +
                         " != " + std::to_string(want.size()));
    return false;
  }
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(err <= atol + rtol * std::fabs(static_cast<double>(want[i])))) {
      Fail(file, line, what + ": element " + std::to_string(i) + " got " +
                           std::to_string(got[i]) + " want " +
                           std::to_string(want[i]));
      return false;
    }
  }
  return true;
}

}  // namespace testing
}  // namespace tflite_tl

#define TL_EXPECT(cond)                                                    \
  do {                                                                     \
    if (!(cond)) ::tflite_tl::testing::Fail(__FILE__, __LINE__, #cond);    \
  } while (0)

#define TL_EXPECT_CLOSE(got, want, rtol, atol, what)                       \
  ::tflite_tl::testing::AllClose((got), (want), (rtol), (atol), (what),    \
                                 __FILE__, __LINE__)

#endif  // TFLM_KERNELS_TESTS_TEST_HARNESS_H_
