#include "tflm_kernels/reference/inverted_residual.h"

#include "tflm_kernels/codesize/entry_points.h"

void tl_inverted_residual(const tflite_tl::reference::InvertedResidualShape* s,
                          const tflite_tl::reference::Int8Stage* expand,
                          const tflite_tl::reference::Int8Stage* depthwise,
                          const tflite_tl::reference::Int8Stage* project,
                          const int8_t* input, int8_t* output,
                          int8_t* scratch,
                          const tflite_tl::reference::InvertedResidualMasks* masks) {
  tflite_tl::reference::InvertedResidual(*s, *expand, *depthwise, *project,
                                         input, output, scratch, masks);
}
