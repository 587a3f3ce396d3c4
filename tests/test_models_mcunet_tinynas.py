"""Tests for tflite_tl.models.mcunet_tinynas."""
import numpy as np

from tflite_tl._compat import keras
from tflite_tl.models import mcunet_tinynas


def _trainable(model):
  return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_published_parameter_count():
  # mit-han-lab/mcunet model zoo: mcunet-256kB has 0.73 M parameters.
  model = mcunet_tinynas.mcunet()
  assert model.input_shape == (None, 160, 160, 3)
  assert _trainable(model) == 729_392
  assert round(_trainable(model) / 1e6, 2) == 0.73
  assert model.count_params() == 744_880


def test_structure_follows_published_config():
  model = mcunet_tinynas.mcunet(resolution=64, input_channels=1, num_classes=10)
  depthwise = [l for l in model.layers
               if isinstance(l, keras.layers.DepthwiseConv2D)]
  specs = mcunet_tinynas.MCUNET_256KB_BLOCKS
  assert [l.kernel_size[0] for l in depthwise] == [s[1] for s in specs]
  assert [l.strides[0] for l in depthwise] == [s[2] for s in specs]
  # The depthwise width is the hidden width of each block.
  assert [l.output_shape[-1] for l in depthwise] == [s[3] for s in specs]
  # No feature-mix conv: the classifier reads the 160-channel block output.
  assert model.get_layer("logits").input_shape == (None, 160)
  assert len([l for l in model.layers if isinstance(l, keras.layers.Add)]) == 11


def test_width_multiplier_shrinks_every_stage():
  model = mcunet_tinynas.mcunet(resolution=48, input_channels=1, num_classes=10,
                        width_multiplier=0.5)
  assert model.get_layer("stem").filters == 8
  assert model.get_layer("block1_project").filters == 8
  assert model.get_layer("block18_project").filters == 80
  assert model.count_params() == 177_898
  assert model(np.zeros((2, 48, 48, 1), np.float32)).shape == (2, 10)
