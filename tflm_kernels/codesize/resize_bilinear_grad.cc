#include "tflm_kernels/reference/resize_bilinear_grad.h"

#include "tflm_kernels/codesize/entry_points.h"

void tl_resize_bilinear_grad(int32_t batch, int32_t in_h, int32_t in_w,
                             int32_t channels, int32_t out_h, int32_t out_w,
                             bool align_corners, bool half_pixel_centers,
                             const float* grad_output, float* grad_input) {
  tflite_tl::reference::ResizeBilinearGrad(batch, in_h, in_w, channels, out_h,
                                           out_w, align_corners,
                                           half_pixel_centers, grad_output,
                                           grad_input);
}
