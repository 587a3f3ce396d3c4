// 1-bit activation masks and the masked gradient.
//
// The gradient of ReLU / ReLU6 only needs to know, per element, whether the
// activation was in its linear range. Storing that as one bit instead of the
// float activation is TinyTL's 32x saving on activation memory.
//
// Packing: element i goes to bit (i % 8) of byte (i / 8), least significant
// bit first (numpy.packbits(..., bitorder="little")). Unused bits of the last
// byte are 0.
#ifndef TFLM_KERNELS_REFERENCE_ACTIVATION_MASK_H_
#define TFLM_KERNELS_REFERENCE_ACTIVATION_MASK_H_

#include <stdint.h>

namespace tflite_tl {
namespace reference {

inline int32_t MaskBytes(int32_t size) { return (size + 7) / 8; }

// Sets bit i iff lower < x[i] < upper (both strict, like TensorFlow's ReluGrad
// and Relu6Grad). ReLU: lower 0, upper +inf. ReLU6: lower 0, upper 6. On int8
// activations use the quantized bounds (lower = zero point, upper = the
// quantized 6, or 128 for plain ReLU), passed as int32_t.
template <typename T, typename Bound>
inline void PackActivationMask(const T* x, int32_t size, Bound lower,
                               Bound upper, uint8_t* mask) {
  const int32_t bytes = MaskBytes(size);
  for (int32_t b = 0; b < bytes; ++b) {
    uint8_t bits = 0;
    const int32_t begin = b * 8;
    const int32_t end = begin + 8 < size ? begin + 8 : size;
    for (int32_t i = end - 1; i >= begin; --i) {  // high bit first: shift in
      const Bound v = static_cast<Bound>(x[i]);
      bits = static_cast<uint8_t>((bits << 1) | ((lower < v && v < upper) ? 1u : 0u));
    }
    mask[b] = bits;
  }
}

// The int8 bounds of an activation's linear range on a tensor quantized with
// (scale, zero_point): lower = the zero point, upper = the quantized 6 for
// ReLU6 (at most 128), 128 (above every int8 value) for plain ReLU. Every
// int8 mask (TL_RELU_MASK, TL_INVERTED_RESIDUAL) uses these bounds.
inline void Int8MaskBounds(bool relu6, float scale, int32_t zero_point,
                           int32_t* lower, int32_t* upper) {
  *lower = zero_point;
  int32_t bound = 128;
  if (relu6) {
    bound = zero_point + static_cast<int32_t>(6.0f / scale + 0.5f);
    if (bound > 128) bound = 128;
  }
  *upper = bound;
}

// Sets bits first .. first + count - 1 of a zeroed mask where lower < x[i] <
// upper (the bits of a run of elements computed together, e.g. one pixel's
// channels); the other bits are left as they are.
inline void SetMaskBits(const int8_t* x, int32_t count, int32_t first,
                        int32_t lower, int32_t upper, uint8_t* mask) {
  for (int32_t i = 0; i < count; ++i) {
    const int32_t v = x[i];
    if (lower < v && v < upper) {
      const int32_t bit = first + i;
      mask[bit >> 3] = static_cast<uint8_t>(mask[bit >> 3] | (1u << (bit & 7)));
    }
  }
}

// Bit i of a packed mask. 32-bit index: element counts of TFLM tensors fit
// (their dims are int), and 64-bit index arithmetic is slow on Cortex-M.
inline bool MaskBit(const uint8_t* mask, int32_t i) {
  return ((mask[i >> 3] >> (i & 7)) & 1) != 0;
}

// grad[i] where bit i of the mask is set, 0 elsewhere; a null mask passes
// every element. The gradient kernels that take an optional mask read
// grad_output through this, so no masked copy of it is ever stored.
inline float MaskedValue(const float* grad, const uint8_t* mask, int32_t i) {
  if (mask == nullptr) return grad[i];
  return MaskBit(mask, i) ? grad[i] : 0.0f;
}

// grad_input[i] = mask bit i ? grad_output[i] : 0. grad_input may alias
// grad_output (in-place update of the gradient buffer).
inline void ApplyActivationMask(const float* grad_output, const uint8_t* mask,
                                int32_t size, float* grad_input) {
  // One mask load per 8 elements, shifted down bit by bit.
  for (int32_t begin = 0; begin < size; begin += 8) {
    uint32_t bits = mask[begin >> 3];
    const int32_t end = begin + 8 < size ? begin + 8 : size;
    for (int32_t i = begin; i < end; ++i, bits >>= 1) {
      grad_input[i] = (bits & 1u) ? grad_output[i] : 0.0f;
    }
  }
}

}  // namespace reference
}  // namespace tflite_tl

#endif  // TFLM_KERNELS_REFERENCE_ACTIVATION_MASK_H_
