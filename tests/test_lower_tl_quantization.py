"""int8 parameters of the kernel flavor: ranges, weights, biases, images."""
import numpy as np

from tflite_tl.lower.tl import quantization as quant


def test_activation_range_includes_zero_and_maps_it_exactly():
  q = quant.activation_quantization(quant.Range(0.5, 6.0))
  assert q.zero_point[0] == -128  # range widened to [0, 6]
  np.testing.assert_allclose(q.scale[0], 6.0 / 255)
  q = quant.activation_quantization(quant.Range(-1.0, 3.0))
  zero = q.zero_point[0]
  assert -128 < zero < 127
  assert abs(zero - 1.0 / q.scale[0] - (-128)) < 1  # -1 at the lowest code


def test_weights_symmetric_per_channel():
  w = np.array([[0.5, -1.0], [0.0, 0.0], [2.0, 1.0]], np.float32)
  scales = quant.weight_scales(w, 0)
  np.testing.assert_allclose(scales, [1 / 127, 1.0, 2 / 127])
  q = quant.quantize_weights(w, scales, 0)
  np.testing.assert_array_equal(q, [[64, -127], [0, 0], [127, 64]])


def test_bias_in_units_of_input_times_weight_scale():
  lq = quant.layer_quantization(np.ones([2, 1, 1, 3], np.float32), 0, 0.5,
                                np.array([0.25, -0.1], np.float32))
  np.testing.assert_allclose(lq.bias_scales, 0.5 / 127)
  np.testing.assert_array_equal(lq.bias_q, [64, -25])


def test_images_exact_for_8_bit_pixels():
  pixels = np.arange(256)
  q = quant.quantize_image((pixels / 255.0).astype(np.float32))
  np.testing.assert_array_equal(q.astype(int), pixels - 128)
