"""Frozen kernels given their per-channel int8 values for the builtin int8
lowering (tflite_tl.lower.fake_quant)."""
import numpy as np
import pytest

from tflite_tl import models
from tflite_tl import rewrite
from tflite_tl._compat import keras
from tflite_tl.lower.fake_quant import fake_quantize
from tflite_tl.lower.fake_quant import fake_quantized_kernels


@pytest.fixture(scope="module")
def model():
  keras.utils.set_random_seed(0)
  backbone = models.get_model("tiny", resolution=32, input_channels=1,
                              num_classes=10)
  return rewrite.apply_method(backbone, "tinytl_b", num_classes=10, seed=0)


def test_values_are_int8_times_the_channel_scale():
  layer = keras.layers.DepthwiseConv2D(3, depth_multiplier=2)
  w = np.random.RandomState(0).randn(3, 3, 4, 2).astype(np.float32)
  fq = fake_quantize(w, layer)
  assert fq.scales.shape == (8,)
  q = np.round(fq.values.reshape(3, 3, 8) / fq.scales).astype(np.float32)
  np.testing.assert_array_equal((q * fq.scales).reshape(w.shape), fq.values)
  assert np.abs(q).max() == 127
  np.testing.assert_allclose(fq.values, w, atol=fq.scales.max())


def test_fake_quantized_kernels_restores_the_model(model):
  before = [w.numpy().copy() for w in model.weights]
  with fake_quantized_kernels(model) as kernels:
    assert kernels
    assert all(k.name not in {w.name.split(":")[0]
                              for w in model.trainable_weights}
               for k in kernels)
    changed = [not np.array_equal(w.numpy(), b)
               for w, b in zip(model.weights, before)]
    assert any(changed)
  for w, b in zip(model.weights, before):
    np.testing.assert_array_equal(w.numpy(), b)
