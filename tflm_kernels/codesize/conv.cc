#include "tflm_kernels/reference/conv.h"

#include "tflm_kernels/codesize/entry_points.h"

void tl_conv(const tflite_tl::reference::ConvGeometry* g, const float* input,
             const float* filter, const float* bias, int32_t activation,
             float* output, uint8_t* mask) {
  tflite_tl::reference::Conv(
      *g, input, filter, bias,
      static_cast<tflite_tl::reference::Activation>(activation), output, mask);
}

void tl_conv_standardized(const tflite_tl::reference::ConvGeometry* g,
                          const float* input, const float* filter,
                          const float* stats, const float* bias,
                          int32_t activation, float* output, uint8_t* mask) {
  tflite_tl::reference::ConvStandardized(
      *g, input, filter, stats, bias,
      static_cast<tflite_tl::reference::Activation>(activation), output, mask);
}

void tl_conv_int8(const tflite_tl::reference::ConvGeometry* g,
                  const int8_t* input,
                  const tflite_tl::reference::Int8Stage* stage, int8_t* output,
                  uint8_t* mask, int32_t mask_lower, int32_t mask_upper) {
  tflite_tl::reference::ConvInt8(*g, input, *stage, output, mask, mask_lower,
                                 mask_upper);
}
