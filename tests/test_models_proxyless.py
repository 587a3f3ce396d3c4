"""Tests for tflite_tl.models.proxyless."""
import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl.models import proxyless


def _trainable_count(model):
  return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_published_parameter_count_at_224():
  # 4,080,512: proxyless_mobile in the reference implementations
  # (mit-han-lab/proxylessnas, osmr/imgclsmob), BN moving stats excluded.
  model = proxyless.proxyless_mobile()
  assert _trainable_count(model) == 4_080_512
  assert model.count_params() == 4_115_008
  assert model.output_shape == (None, 1000)


def test_block_structure_matches_published_config():
  model = proxyless.proxyless_mobile(resolution=64, input_channels=1,
                                     num_classes=10)
  depthwise = [l for l in model.layers
               if isinstance(l, keras.layers.DepthwiseConv2D)]
  assert [l.kernel_size[0] for l in depthwise] == [
      spec[1] for spec in proxyless.PROXYLESS_MOBILE_BLOCKS]
  assert [l.strides[0] for l in depthwise] == [
      spec[2] for spec in proxyless.PROXYLESS_MOBILE_BLOCKS]
  adds = [l for l in model.layers if isinstance(l, keras.layers.Add)]
  # Every stride-1 block that keeps its width is residual: 13 of 20.
  assert len(adds) == 13
  assert all(l.padding == "same" for l in depthwise)
  assert model.get_layer("stem").strides == (2, 2)


def test_grayscale_small_input_runs():
  model = proxyless.proxyless_mobile(resolution=32, input_channels=1,
                                     num_classes=10)
  logits = model(np.zeros((2, 32, 32, 1), np.float32))
  assert logits.shape == (2, 10)
  assert len({l.name for l in model.layers}) == len(model.layers)


@pytest.mark.parametrize("kwargs", [dict(resolution=16), dict(input_channels=0),
                                    dict(num_classes=1)])
def test_bad_arguments_raise(kwargs):
  with pytest.raises(ValueError, match="proxyless_mobile"):
    proxyless.proxyless_mobile(**kwargs)
