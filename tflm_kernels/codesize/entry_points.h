// extern "C" entry points of the reference kernels for code-size measurement:
// templates and inline functions emit no code until instantiated.
#ifndef TFLM_KERNELS_CODESIZE_ENTRY_POINTS_H_
#define TFLM_KERNELS_CODESIZE_ENTRY_POINTS_H_

#include <stdint.h>

#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/conv_update.h"
#include "tflm_kernels/reference/depthwise_chain_update.h"
#include "tflm_kernels/reference/group_norm.h"
#include "tflm_kernels/reference/inverted_residual.h"
#include "tflm_kernels/reference/inverted_residual_input_grad.h"
#include "tflm_kernels/reference/inverted_residual_update.h"
#include "tflm_kernels/reference/norm_grad_outputs.h"

extern "C" {
void tl_bias_grad(const float* grad_output, int32_t rows, int32_t channels,
                  float* grad_bias);
void tl_bias_grad_fused_sgd(const float* grad_output, int32_t rows,
                            int32_t channels, float learning_rate, float* bias,
                            float* grad_bias);
bool tl_conv_weight_grad_sparse(const tflite_tl::reference::ConvGeometry* g,
                                const float* input, const float* grad_output,
                                const int32_t* channels, int32_t num_channels,
                                float* grad_filter);
bool tl_conv_weight_grad_sparse_int8(
    const tflite_tl::reference::ConvGeometry* g, const int8_t* input,
    float input_scale, int32_t input_zero_point, const float* grad_output,
    const int32_t* channels, int32_t num_channels, float* grad_filter);
void tl_depthwise_weight_grad(const tflite_tl::reference::ConvGeometry* g,
                              const float* input, const float* grad_output,
                              float* grad_filter);
void tl_depthwise_weight_grad_int8(const tflite_tl::reference::ConvGeometry* g,
                                   const int8_t* input, float input_scale,
                                   int32_t input_zero_point,
                                   const float* grad_output,
                                   float* grad_filter);
// activation 0 none, 1 ReLU, 2 ReLU6; mask: the optional output (null: none).
void tl_depthwise_conv(const tflite_tl::reference::ConvGeometry* g,
                       const float* input, const float* filter,
                       const float* bias, int32_t activation, float* output,
                       uint8_t* mask);
// The int8 forward of the same (TFLM's int8 DEPTHWISE_CONV_2D; multipliers
// in the stage, computed per invoke by the adapter).
void tl_depthwise_conv_int8(const tflite_tl::reference::ConvGeometry* g,
                            const int8_t* input,
                            const tflite_tl::reference::Int8Stage* stage,
                            int8_t* output, uint8_t* mask, int32_t mask_lower,
                            int32_t mask_upper);
// The int8 expand -> depthwise -> project block, streamed row by row, with
// its optional masks (the train step's variant).
void tl_inverted_residual(const tflite_tl::reference::InvertedResidualShape* s,
                          const tflite_tl::reference::Int8Stage* expand,
                          const tflite_tl::reference::Int8Stage* depthwise,
                          const tflite_tl::reference::Int8Stage* project,
                          const int8_t* input, int8_t* output,
                          int8_t* scratch,
                          const tflite_tl::reference::InvertedResidualMasks* masks);
// TL_CONV's loop (grouped convs; the standardised forward adds
// tl_weight_standardize): activation and mask as tl_depthwise_conv.
void tl_conv(const tflite_tl::reference::ConvGeometry* g, const float* input,
             const float* filter, const float* bias, int32_t activation,
             float* output, uint8_t* mask);
// TL_CONV's standardised forward without filter_hat: the same loop reading
// w_hat on the fly from the raw filter and its row statistics (stats: 3
// floats per output channel, from tl_weight_standardize_stats).
void tl_conv_standardized(const tflite_tl::reference::ConvGeometry* g,
                          const float* input, const float* filter,
                          const float* stats, const float* bias,
                          int32_t activation, float* output, uint8_t* mask);
void tl_weight_standardize_stats(const float* w, int32_t out_channels,
                                 int32_t fan_in, float epsilon, float* stats);
// The int8 forward of the same (TFLM's int8 CONV_2D).
void tl_conv_int8(const tflite_tl::reference::ConvGeometry* g,
                  const int8_t* input,
                  const tflite_tl::reference::Int8Stage* stage, int8_t* output,
                  uint8_t* mask, int32_t mask_lower, int32_t mask_upper);
// TL_WS_CONV_UPDATE's step; scratch: one filter row (kh * kw * Ci / groups).
void tl_ws_conv_update(const tflite_tl::reference::ConvGeometry* g,
                       const float* grad_output, const uint8_t* mask,
                       const float* input, float epsilon, float learning_rate,
                       float* filter, float* bias, float* scratch);
// Its input gradient from the raw filter (w_hat on the fly); scratch: 3
// floats per output channel.
void tl_ws_conv_input_grad(const tflite_tl::reference::ConvGeometry* g,
                           const float* grad_output, const uint8_t* mask,
                           const float* filter, float epsilon, float* scratch,
                           float* grad_input);
// mask: the optional 1-bit mask (null: none); both variants are linked.
void tl_conv_input_grad_int8(const tflite_tl::reference::ConvGeometry* g,
                             const float* grad_output, const int8_t* filter,
                             const float* scales, float* grad_input,
                             const uint8_t* mask);
void tl_depthwise_input_grad_int8(const tflite_tl::reference::ConvGeometry* g,
                                  const float* grad_output,
                                  const int8_t* filter, const float* scales,
                                  float* grad_input, const uint8_t* mask);
// Null masks / no expand are run-time choices: every variant is linked.
void tl_inverted_residual_input_grad(
    const tflite_tl::reference::InvertedResidualInputGradShape* s,
    const float* grad_output, const tflite_tl::reference::Int8Filter* project,
    const tflite_tl::reference::Int8Filter* depthwise,
    const tflite_tl::reference::Int8Filter* expand,
    const tflite_tl::reference::InvertedResidualGradMasks* masks,
    float* grad_input, float* scratch);
// The streamed input gradient with the depthwise's weight and bias step and
// the project's (null: frozen); masks, trained parameters and QAS are
// run-time choices: all linked.
bool tl_inverted_residual_update(
    const tflite_tl::reference::InvertedResidualInputGradShape* s,
    const float* grad_output, const tflite_tl::reference::Int8Filter* project,
    const tflite_tl::reference::Int8Filter* depthwise,
    const tflite_tl::reference::Int8Filter* expand,
    const tflite_tl::reference::InvertedResidualGradMasks* masks,
    const tflite_tl::reference::InvertedResidualDepthwiseUpdate* update,
    float* grad_input, float* scratch,
    const tflite_tl::reference::InvertedResidualProjectUpdate* project_update);
void tl_relu_mask(const float* x, int32_t size, float upper, uint8_t* mask);
void tl_masked_grad(const float* grad_output, const uint8_t* mask,
                    int32_t size, float* grad_input);
void tl_sgd_update(const float* grad, int32_t size, float learning_rate,
                   float* weights);
void tl_sgd_momentum_update(const float* grad, int32_t size,
                            float learning_rate, float momentum,
                            float* velocity, float* weights);
void tl_bias_update(const float* grad_output, const uint8_t* mask,
                    int32_t rows, int32_t channels,
                    const tflite_tl::reference::SgdOptions* sgd,
                    const tflite_tl::reference::TrainedParameters* p);
bool tl_conv_update(const tflite_tl::reference::ConvGeometry* g,
                    const float* grad_output, const uint8_t* mask,
                    const float* input, int32_t input_depth,
                    const int32_t* channels, int32_t num_channels,
                    int32_t channel_axis,
                    const tflite_tl::reference::SgdOptions* sgd,
                    const tflite_tl::reference::TrainedParameters* p);
bool tl_conv_update_int8(const tflite_tl::reference::ConvGeometry* g,
                         const float* grad_output, const uint8_t* mask,
                         const int8_t* input, float input_scale,
                         int32_t input_zero_point, int32_t input_depth,
                         const int32_t* channels, int32_t num_channels,
                         int32_t channel_axis,
                         const tflite_tl::reference::SgdOptions* sgd,
                         const tflite_tl::reference::TrainedParameters* p);
bool tl_depthwise_update(const tflite_tl::reference::ConvGeometry* g,
                         const float* grad_output, const uint8_t* mask,
                         const float* input, int32_t input_depth,
                         const int32_t* channels, int32_t num_channels,
                         const tflite_tl::reference::SgdOptions* sgd,
                         const tflite_tl::reference::TrainedParameters* p);
bool tl_softmax_xent(const float* logits, const int32_t* labels, int32_t batch,
                     int32_t classes, float label_smoothing, float* loss,
                     float* grad_logits);
void tl_avgpool_grad(const tflite_tl::reference::ConvGeometry* g,
                     const float* grad_output, float* grad_input);
void tl_resize_bilinear_grad(int32_t batch, int32_t in_h, int32_t in_w,
                             int32_t channels, int32_t out_h, int32_t out_w,
                             bool align_corners, bool half_pixel_centers,
                             const float* grad_output, float* grad_input);
void tl_group_norm(const tflite_tl::reference::GroupNormShape* s,
                   const float* x, const float* gamma, const float* beta,
                   float epsilon, float* stats, float* y);
void tl_group_norm_grad(const tflite_tl::reference::GroupNormShape* s,
                        const float* grad_output, const uint8_t* mask,
                        const float* x, const float* gamma, float epsilon,
                        float* stats,
                        const tflite_tl::reference::NormGradOutputs* out);
void tl_batch_norm_grad(const float* grad_output, const uint8_t* mask,
                        const float* x, const float* mean,
                        const float* inv_std, const float* gamma, int32_t rows,
                        int32_t channels,
                        const tflite_tl::reference::NormGradOutputs* out);
void tl_batch_norm_grad_int8(const float* grad_output, const uint8_t* mask,
                             const int8_t* x, float input_scale,
                             int32_t input_zero_point, const float* mean,
                             const float* inv_std, const float* gamma,
                             int32_t rows, int32_t channels,
                             const tflite_tl::reference::NormGradOutputs* out);
void tl_weight_standardize(const float* w, int32_t out_channels,
                           int32_t fan_in, float epsilon, float* w_hat);
void tl_weight_standardize_grad(const float* w, const float* grad_w_hat,
                                int32_t out_channels, int32_t fan_in,
                                float epsilon, float* grad_w);
bool tl_depthwise_update_int8(const tflite_tl::reference::ConvGeometry* g,
                              const float* grad_output, const uint8_t* mask,
                              const int8_t* input, float input_scale,
                              int32_t input_zero_point, int32_t input_depth,
                              const int32_t* channels, int32_t num_channels,
                              const tflite_tl::reference::SgdOptions* sgd,
                              const tflite_tl::reference::TrainedParameters* p);
void tl_depthwise_chain_update(
    const tflite_tl::reference::ConvGeometry* g, const float* grad_output,
    const uint8_t* mask, const float* filter,
    const tflite_tl::reference::SgdOptions* sgd,
    const tflite_tl::reference::TrainedParameters* dw,
    const tflite_tl::reference::ChainUpstream<float>* up, float* scratch,
    const tflite_tl::reference::ChainDownstream<float>* ds);
void tl_depthwise_chain_update_int8(
    const tflite_tl::reference::ConvGeometry* g, const float* grad_output,
    const uint8_t* mask, const int8_t* filter, const float* scales,
    const tflite_tl::reference::SgdOptions* sgd,
    const tflite_tl::reference::TrainedParameters* dw,
    const tflite_tl::reference::ChainUpstream<int8_t>* up, float* scratch,
    const tflite_tl::reference::ChainDownstream<int8_t>* ds);
}

#endif  // TFLM_KERNELS_CODESIZE_ENTRY_POINTS_H_
