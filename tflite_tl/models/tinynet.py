"""A tiny MBConv network for fast tests and quick end-to-end runs.

Stem conv, one stride-2 MBConv and one residual MBConv, so every structure the
rewrite and lowering stages handle (expand/depthwise/project, strided
depthwise, residual Add, BatchNorm, ReLU and ReLU6, pooled linear head)
appears once, in a model of a few thousand parameters that trains in seconds.
"""
from tflite_tl._compat import keras
from tflite_tl.models import blocks


def tiny(resolution: int = 32, input_channels: int = 1, num_classes: int = 10,
         width_multiplier: float = 1.0, dropout: float = 0.0) -> keras.Model:
  """Builds the tiny test network.

  Args:
    resolution: square input size in pixels (>= 8; downsamples by 4).
    input_channels: 1 for grayscale, 3 for RGB.
    num_classes: size of the logits layer.
    width_multiplier: scales the 8/16 base channel counts.
    dropout: dropout rate before the classifier (0 removes the layer).

  Returns:
    A model mapping float32 NHWC images to logits.
  """
  blocks.check_input_spec("tiny", resolution, input_channels, num_classes,
                          min_resolution=8)
  blocks.check_width_multiplier("tiny", width_multiplier)
  narrow = blocks.make_divisible(8 * width_multiplier)
  wide = blocks.make_divisible(16 * width_multiplier)
  inputs = blocks.model_input(resolution, input_channels)
  # Plain ReLU in the stem so both activation kinds are exercised.
  x = blocks.conv_bn_relu(inputs, narrow, 3, 2, name="stem", relu_max=None)
  x = blocks.inverted_residual(x, wide, 3, 2, 2, name="block1")
  x = blocks.inverted_residual(x, wide, 3, 1, 2, name="block2")
  outputs = blocks.classifier_head(x, num_classes, dropout)
  return keras.Model(inputs, outputs, name="tiny")
