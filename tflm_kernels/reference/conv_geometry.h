// Geometry shared by the convolution gradient kernels.
//
// Layouts follow TFLite: activations NHWC, conv filters OHWI
// ([out_channels, filter_h, filter_w, in_channels]), depthwise filters
// [1, filter_h, filter_w, in_channels * depth_multiplier]. Padding follows
// TensorFlow: SAME puts the odd padding element at the bottom/right.
// Dilation is 1 (the gradients of dilated convolutions are not provided).
// Grouped convolutions (TinyTL's lite residual branch uses 2 groups) split
// the channels into `groups` equal parts; the filter then has in_c / groups
// input channels, as in TFLite's grouped CONV_2D.
#ifndef TFLM_KERNELS_REFERENCE_CONV_GEOMETRY_H_
#define TFLM_KERNELS_REFERENCE_CONV_GEOMETRY_H_

#include <stdint.h>

namespace tflite_tl {
namespace reference {

enum class Padding : int32_t { kValid = 0, kSame = 1 };

// The rows of an OHWI filter [Co, kh, kw, Ci/g] as the convolution loops
// read them: rows(o) gives something indexable by the offset i in row o
// (i = (ky * kw + kx) * Ci/g + ci). A plain filter's row is a pointer;
// weight_standardize.h's StandardizedRows computes a standardised filter's
// values on the fly instead of storing them.
template <typename T>
struct PointerRows {
  const T* filter;
  int32_t fan_in;
  const T* operator()(int32_t o) const {
    return filter + static_cast<int64_t>(o) * fan_in;
  }
};

// Spatial output size of a convolution, as TensorFlow computes it.
// Returns 0 when the filter does not fit (VALID with filter > input) or a
// size/stride is not positive.
inline int32_t ConvOutputSize(Padding padding, int32_t in_size,
                              int32_t filter_size, int32_t stride) {
  if (in_size <= 0 || filter_size <= 0 || stride <= 0) return 0;
  if (padding == Padding::kSame) return (in_size + stride - 1) / stride;
  if (filter_size > in_size) return 0;
  return (in_size - filter_size + stride) / stride;
}

// Padding before (top or left) for TensorFlow's SAME rule; 0 for VALID.
inline int32_t ConvPaddingBefore(Padding padding, int32_t in_size,
                                 int32_t filter_size, int32_t stride,
                                 int32_t out_size) {
  if (padding != Padding::kSame) return 0;
  const int32_t total = (out_size - 1) * stride + filter_size - in_size;
  return total > 0 ? total / 2 : 0;
}

// Everything a conv/depthwise gradient loop needs to map an output position
// back to the input window.
struct ConvGeometry {
  int32_t batch;
  int32_t in_h, in_w, in_c;
  int32_t out_h, out_w, out_c;
  int32_t filter_h, filter_w;
  int32_t stride_h, stride_w;
  int32_t pad_top, pad_left;
  int32_t groups;  // 1 for an ordinary convolution; ignored by depthwise
};

// Values in one output channel's row of an OHWI conv filter: kh * kw * Ci/g.
inline int32_t FilterFanIn(const ConvGeometry& g) {
  return g.filter_h * g.filter_w * (g.in_c / g.groups);
}

// Fills `geometry` for a convolution from `in_c` to `out_c` channels and
// checks that the sizes are consistent. Returns false (and leaves the
// geometry unusable) when a size is not positive, the output is empty, or
// the channels do not split into `groups`.
inline bool MakeConvGeometry(int32_t batch, int32_t in_h, int32_t in_w,
                             int32_t in_c, int32_t out_c, int32_t filter_h,
                             int32_t filter_w, int32_t stride_h,
                             int32_t stride_w, Padding padding,
                             ConvGeometry* geometry, int32_t groups = 1) {
  if (batch <= 0 || in_c <= 0 || out_c <= 0 || groups <= 0) return false;
  if (in_c % groups != 0 || out_c % groups != 0) return false;
  const int32_t out_h = ConvOutputSize(padding, in_h, filter_h, stride_h);
  const int32_t out_w = ConvOutputSize(padding, in_w, filter_w, stride_w);
  if (out_h <= 0 || out_w <= 0) return false;
  geometry->batch = batch;
  geometry->in_h = in_h;
  geometry->in_w = in_w;
  geometry->in_c = in_c;
  geometry->out_h = out_h;
  geometry->out_w = out_w;
  geometry->out_c = out_c;
  geometry->filter_h = filter_h;
  geometry->filter_w = filter_w;
  geometry->stride_h = stride_h;
  geometry->stride_w = stride_w;
  geometry->pad_top =
      ConvPaddingBefore(padding, in_h, filter_h, stride_h, out_h);
  geometry->pad_left =
      ConvPaddingBefore(padding, in_w, filter_w, stride_w, out_w);
  geometry->groups = groups;
  return true;
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_CONV_GEOMETRY_H_
