// Instruction counts of the reference training kernels on a Cortex-M4F, for
// one representative MCU layer, under QEMU (mps2-an386) with -icount.
//
// SysTick runs on virtual time, which -icount advances by a fixed amount per
// instruction, so its ticks are a deterministic instruction count (up to the
// ratio that the calibration loop measures). These are instructions, not
// cycles: QEMU models no pipeline, wait states or FPU latency.
// Built and run by scripts/kernels_m4_bench.sh; prints one line per kernel.
#include <stdint.h>
#include <stdio.h>

#include "tflm_kernels/reference/activation_mask.h"
#include "tflm_kernels/reference/bias_grad.h"
#include "tflm_kernels/reference/conv_geometry.h"
#include "tflm_kernels/reference/conv_input_grad.h"
#include "tflm_kernels/reference/conv_update.h"
#include "tflm_kernels/reference/conv_weight_grad.h"
#include "tflm_kernels/reference/depthwise_input_grad.h"
#include "tflm_kernels/reference/depthwise_weight_grad.h"
#include "tflm_kernels/reference/group_norm.h"
#include "tflm_kernels/reference/inverted_residual.h"
#include "tflm_kernels/reference/sgd.h"

extern "C" {
void _start(void);  // newlib rdimon crt0: clears .bss, calls main, exit()
extern uint32_t __stack;
void ResetHandler(void) {
  // Grant full access to the FPU (CP10, CP11) before any float instruction;
  // the C runtime does not.
  *reinterpret_cast<volatile uint32_t*>(0xE000ED88u) |= 0xFu << 20;
  __asm__ volatile("dsb\n isb" ::: "memory");
  _start();
}
static void Hang(void) {
  for (;;) {
  }
}
// Initial stack pointer, reset, then the exception handlers (none expected).
__attribute__((section(".vectors"), used)) void* const kVectors[16] = {
    &__stack,
    reinterpret_cast<void*>(ResetHandler),
    reinterpret_cast<void*>(Hang), reinterpret_cast<void*>(Hang),
    reinterpret_cast<void*>(Hang), reinterpret_cast<void*>(Hang),
    reinterpret_cast<void*>(Hang), nullptr, nullptr, nullptr, nullptr,
    reinterpret_cast<void*>(Hang), reinterpret_cast<void*>(Hang), nullptr,
    reinterpret_cast<void*>(Hang), reinterpret_cast<void*>(Hang)};
}

namespace {

using tflite_tl::reference::ActivationQuantization;
using tflite_tl::reference::ConvGeometry;
using tflite_tl::reference::Padding;

// A 16x16x16 feature map, 3x3 convolutions to 16 channels, batch 1: the
// size of a mid-network layer of an MCU CNN.
constexpr int32_t kH = 16, kW = 16, kC = 16, kOut = 16, kK = 3;
constexpr int32_t kMap = kH * kW * kC;
constexpr int32_t kFilter = kOut * kK * kK * kC;
constexpr int32_t kSparse = 4;  // TinyTrain-style: 4 of 16 channels

float input[kMap], grad_output[kH * kW * kOut], grad_input[kMap];
int8_t input_q[kMap], filter_q[kFilter], dw_filter_q[kK * kK * kC];
float scales[kOut], grad_filter[kFilter], dw_grad_filter[kK * kK * kC];
float weights[kFilter], velocity[kFilter], bias[kOut], grad_bias[kOut];
uint8_t mask[(kMap + 7) / 8];
// A mask pointer known only at run time, as the TFLM adapter passes it.
const uint8_t* volatile no_mask = nullptr;
int32_t channels[kOut];
// The int8 forward's copies for the in-place update, and group-norm state.
int32_t bias_q[kOut];
float master[kSparse * kK * kK * kC], gn_gamma[kC], gn_beta[kC], gn_stats[2 * 4];
// An int8 inverted-residual block on the same map: 1x1 expand to kE channels,
// 3x3 depthwise, 1x1 project back to kC, streamed (ring of 3 expanded rows).
constexpr int32_t kE = 48;
constexpr int32_t kBlockChannels = kE + kE + kC;
int8_t ir_expand[kE * kC], ir_dw[kK * kK * kE], ir_project[kC * kE];
int8_t ir_output[kMap], ir_scratch[kK * kW * kE + kE];
int32_t ir_bias[kE], ir_multiplier[kBlockChannels], ir_shift[kBlockChannels];
float ir_scales[kE];

volatile uint32_t* const kSysTick = reinterpret_cast<uint32_t*>(0xE000E010u);

void StartSysTick() {
  kSysTick[1] = 0x00FFFFFFu;  // LOAD: full 24-bit range
  kSysTick[2] = 0;            // VAL
  kSysTick[0] = 5u;           // CTRL: enable, processor clock, no interrupt
}

uint32_t Now() { return kSysTick[2] & 0x00FFFFFFu; }

template <typename F>
uint32_t Ticks(F f) {
  const uint32_t start = Now();
  f();
  const uint32_t end = Now();
  return (start - end) & 0x00FFFFFFu;  // down-counter; one wrap at most
}

uint32_t lcg = 12345u;
float Random() {
  lcg = lcg * 1664525u + 1013904223u;
  return static_cast<float>(static_cast<int32_t>(lcg >> 8) - (1 << 23)) /
         static_cast<float>(1 << 23);
}

void Fill() {
  for (int32_t i = 0; i < kMap; ++i) {
    input[i] = Random();
    input_q[i] = static_cast<int8_t>(input[i] * 127.0f);
  }
  for (int32_t i = 0; i < kH * kW * kOut; ++i) grad_output[i] = Random();
  for (int32_t i = 0; i < kFilter; ++i) {
    filter_q[i] = static_cast<int8_t>(Random() * 127.0f);
    weights[i] = Random();
    velocity[i] = 0.0f;
  }
  for (int32_t i = 0; i < kK * kK * kC; ++i) {
    dw_filter_q[i] = static_cast<int8_t>(Random() * 127.0f);
  }
  for (int32_t i = 0; i < kOut; ++i) {
    scales[i] = 0.01f;
    bias[i] = Random();
    channels[i] = i;
    gn_gamma[i] = 1.0f + 0.1f * Random();
    gn_beta[i] = Random();
  }
  for (int32_t i = 0; i < kSparse * kK * kK * kC; ++i) master[i] = Random();
  for (int32_t i = 0; i < kE * kC; ++i) {
    ir_expand[i] = static_cast<int8_t>(Random() * 127.0f);
    ir_project[i] = static_cast<int8_t>(Random() * 127.0f);
  }
  for (int32_t i = 0; i < kK * kK * kE; ++i) {
    ir_dw[i] = static_cast<int8_t>(Random() * 127.0f);
  }
  for (int32_t i = 0; i < kE; ++i) {
    ir_bias[i] = static_cast<int32_t>(Random() * 1000.0f);
    ir_scales[i] = 0.004f + 0.001f * Random();
  }
}

void Report(const char* name, uint32_t ticks, uint32_t overhead, int32_t macs) {
  printf("kernel %s %lu %ld\n", name,
         static_cast<unsigned long>(ticks - overhead), static_cast<long>(macs));
}

}  // namespace

int main() {
  Fill();
  StartSysTick();
  // Calibration: a loop of exactly 2 instructions per iteration.
  constexpr uint32_t kLoops = 100000;
  const uint32_t calibration = Ticks([] {
    uint32_t n = kLoops;
    __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n));
  });
  printf("calibration %lu %lu\n", static_cast<unsigned long>(calibration),
         static_cast<unsigned long>(2 * kLoops));
  const uint32_t overhead = Ticks([] {});

  ConvGeometry conv{};
  ConvGeometry dw{};
  tflite_tl::reference::MakeConvGeometry(1, kH, kW, kC, kOut, kK, kK, 1, 1,
                                         Padding::kSame, &conv);
  tflite_tl::reference::MakeConvGeometry(1, kH, kW, kC, kC, kK, kK, 1, 1,
                                         Padding::kSame, &dw);
  const int32_t conv_macs = kH * kW * kOut * kK * kK * kC;
  const int32_t dw_macs = kH * kW * kC * kK * kK;
  const ActivationQuantization quant{0.008f, 3};

  Report("bias_grad", Ticks([] {
           tflite_tl::reference::BiasGrad(grad_output, kH * kW, kOut, grad_bias);
         }), overhead, kH * kW * kOut);
  Report("bias_grad_fused_sgd", Ticks([] {
           tflite_tl::reference::BiasGradFusedSgd(grad_output, kH * kW, kOut,
                                                  0.01f, bias, nullptr);
         }), overhead, kH * kW * kOut);
  Report("relu6_mask_pack", Ticks([] {
           tflite_tl::reference::PackActivationMask<float, float>(
               input, kMap, 0.0f, 6.0f, mask);
         }), overhead, kMap);
  Report("masked_grad", Ticks([] {
           tflite_tl::reference::ApplyActivationMask(input, mask, kMap, grad_input);
         }), overhead, kMap);
  Report("conv_wgrad_sparse_4_of_16", Ticks([&] {
           tflite_tl::reference::ConvWeightGradSparse(conv, input, grad_output,
                                                      channels, kSparse, grad_filter);
         }), overhead, conv_macs / (kOut / kSparse));
  Report("conv_wgrad_sparse_4_of_16_int8_input", Ticks([&] {
           tflite_tl::reference::ConvWeightGradSparse<int8_t>(
               conv, input_q, quant, grad_output, channels, kSparse, grad_filter);
         }), overhead, conv_macs / (kOut / kSparse));
  Report("conv_wgrad_all_16", Ticks([&] {
           tflite_tl::reference::ConvWeightGradSparse(conv, input, grad_output,
                                                      channels, kOut, grad_filter);
         }), overhead, conv_macs);
  Report("depthwise_wgrad", Ticks([&] {
           tflite_tl::reference::DepthwiseWeightGrad(dw, input, grad_output,
                                                     dw_grad_filter);
         }), overhead, dw_macs);
  Report("conv_input_grad_int8", Ticks([&] {
           tflite_tl::reference::ConvInputGrad<int8_t>(conv, grad_output, filter_q,
                                                       scales, grad_input, no_mask);
         }), overhead, conv_macs);
  Report("depthwise_input_grad_int8", Ticks([&] {
           tflite_tl::reference::DepthwiseInputGrad<int8_t>(
               dw, grad_output, dw_filter_q, scales, grad_input, no_mask);
         }), overhead, dw_macs);
  Report("depthwise_input_grad_int8_masked", Ticks([&] {
           tflite_tl::reference::DepthwiseInputGrad<int8_t>(
               dw, grad_output, dw_filter_q, scales, grad_input, mask);
         }), overhead, dw_macs);
  // In place: gradient of 4 of 16 filter rows and of the bias, summed in
  // registers and applied at once (no gradient buffer).
  const tflite_tl::reference::SgdOptions sgd{0.01f, true};
  Report("conv_update_4_of_16_with_bias", Ticks([&] {
           tflite_tl::reference::TrainedParameters p{};
           p.filter = weights;
           p.bias = bias;
           tflite_tl::reference::ConvUpdate<float>(conv, grad_output, no_mask, input,
                                                   tflite_tl::reference::kNoQuantization,
                                                   kC, channels, kSparse, 0, sgd, p);
         }), overhead, conv_macs / (kOut / kSparse));
  Report("conv_update_4_of_16_int8_requantized", Ticks([&] {
           tflite_tl::reference::TrainedParameters p{};
           p.filter = master;
           p.filter_q = filter_q;
           p.filter_scales = scales;
           p.bias = bias;
           p.bias_q = bias_q;
           p.bias_scales = scales;
           tflite_tl::reference::ConvUpdate<int8_t>(conv, grad_output, no_mask, input_q,
                                                    quant, kC, channels, kSparse, 0, sgd, p);
         }), overhead, conv_macs / (kOut / kSparse));
  Report("group_norm_grad_4_groups", Ticks([&] {
           const tflite_tl::reference::GroupNormShape shape{1, kH * kW, kC, 4};
           const tflite_tl::reference::NormGradOutputs out{grad_input, gn_gamma, gn_beta, 0.01f};
           tflite_tl::reference::GroupNormGrad(shape, grad_output, no_mask, input, gn_gamma,
                                               1e-3f, gn_stats, out);
         }), overhead, kMap);
  Report("sgd_momentum_2304_weights", Ticks([] {
           tflite_tl::reference::SgdMomentumUpdate(grad_filter, kFilter, 0.01f,
                                                   0.9f, velocity, weights);
         }), overhead, kFilter);
  // The requantization multipliers the TFLM adapter recomputes per invoke
  // (double precision, soft-float on the M4F), one per channel.
  Report("inverted_residual_multipliers_112_channels", Ticks([] {
           tflite_tl::reference::StageMultipliers(0.02f, ir_scales, 0.05f, kE,
                                                  ir_multiplier, ir_shift);
           tflite_tl::reference::StageMultipliers(0.05f, ir_scales, 0.04f, kE,
                                                  ir_multiplier + kE, ir_shift + kE);
           tflite_tl::reference::StageMultipliers(0.04f, ir_scales, 0.1f, kC,
                                                  ir_multiplier + 2 * kE,
                                                  ir_shift + 2 * kE);
         }), overhead, kBlockChannels);
  Report("inverted_residual_int8_16_48_16", Ticks([] {
           tflite_tl::reference::InvertedResidualShape shape{};
           shape.batch = 1;
           shape.in_h = kH;
           shape.in_w = kW;
           shape.in_c = kC;
           shape.expanded_c = kE;
           shape.out_c = kC;
           shape.filter_h = shape.filter_w = kK;
           shape.stride_h = shape.stride_w = 1;
           shape.has_expand = true;
           shape.expand_filter_h = shape.expand_filter_w = 1;
           shape.expand_stride_h = shape.expand_stride_w = 1;
           tflite_tl::reference::SetInvertedResidualGeometry(
               tflite_tl::reference::Padding::kSame, tflite_tl::reference::Padding::kSame,
               &shape);
           const tflite_tl::reference::Int8Stage expand{
               ir_expand, ir_bias, ir_multiplier, ir_shift, 3, -128, -128, 127};
           const tflite_tl::reference::Int8Stage depthwise{
               ir_dw, ir_bias, ir_multiplier + kE, ir_shift + kE, -128, -128, -128, 127};
           const tflite_tl::reference::Int8Stage project{
               ir_project, ir_bias, ir_multiplier + 2 * kE, ir_shift + 2 * kE, -128, 5,
               -128, 127};
           tflite_tl::reference::InvertedResidual(shape, expand, depthwise, project,
                                                  input_q, ir_output, ir_scratch);
         }), overhead, kH * kW * (kC * kE + kK * kK * kE + kE * kC));
  printf("done\n");
  return 0;
}
