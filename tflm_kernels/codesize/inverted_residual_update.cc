#include "tflm_kernels/reference/inverted_residual_update.h"

#include "tflm_kernels/codesize/entry_points.h"

bool tl_inverted_residual_update(
    const tflite_tl::reference::InvertedResidualInputGradShape* s,
    const float* grad_output, const tflite_tl::reference::Int8Filter* project,
    const tflite_tl::reference::Int8Filter* depthwise,
    const tflite_tl::reference::Int8Filter* expand,
    const tflite_tl::reference::InvertedResidualGradMasks* masks,
    const tflite_tl::reference::InvertedResidualDepthwiseUpdate* update,
    float* grad_input, float* scratch,
    const tflite_tl::reference::InvertedResidualProjectUpdate* project_update) {
  return tflite_tl::reference::InvertedResidualUpdate(
      *s, grad_output, *project, *depthwise, *expand, *masks, *update,
      grad_input, scratch, project_update);
}
