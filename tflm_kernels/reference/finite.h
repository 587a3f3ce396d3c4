// Whether a float is finite, without <cmath>'s classification macros (the
// same answer on every libc this code is built with, -ffast-math aside).
#ifndef TFLM_KERNELS_REFERENCE_FINITE_H_
#define TFLM_KERNELS_REFERENCE_FINITE_H_

#include <float.h>
#include <math.h>

namespace tflite_tl {
namespace reference {

inline bool IsFinite(float x) { return fabsf(x) <= FLT_MAX; }  // false for NaN

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_FINITE_H_
