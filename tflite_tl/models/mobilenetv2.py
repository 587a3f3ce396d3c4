"""MobileNetV2 (Sandler et al., CVPR 2018) as a functional tf-keras model.

Same layer structure and channel rounding as ``keras.applications.MobileNetV2``
(1.0 at 224 px, 3 channels, 1000 classes: 3,538,984 parameters), with free
input channels and class count, no ``ZeroPadding2D`` (``same`` padding
throughout) and an optional narrower last 1x1 conv. The last conv dominates
the parameter count of narrow networks (at width 0.35 it holds 143 k of the
~400 k parameters of a 10-class model), and every frozen float32 weight of an
on-device training graph sits in flash, so embedded defaults shrink it with
``last_channels``.
"""
from typing import Optional, Tuple

from tflite_tl._compat import keras
from tflite_tl.models import blocks

# (expand_ratio, out_channels, repeats, first_stride) per stage, Table 2 of the
# MobileNetV2 paper.
MOBILENET_V2_STAGES: Tuple[Tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def mobilenet_v2(resolution: int = 224, input_channels: int = 3,
                 num_classes: int = 1000, width_multiplier: float = 1.0,
                 last_channels: Optional[int] = None,
                 dropout: float = 0.2) -> keras.Model:
  """Builds MobileNetV2.

  Args:
    resolution: square input size in pixels (>= 32; the network downsamples
      by 32).
    input_channels: 3 for RGB, 1 for grayscale.
    num_classes: size of the logits layer.
    width_multiplier: the paper's alpha; channel counts are scaled and
      rounded to multiples of 8 as in keras.applications.
    last_channels: width of the final 1x1 conv. ``None`` follows the paper
      (1280, widened for alpha > 1).
    dropout: dropout rate before the classifier (0 removes the layer).

  Returns:
    A model mapping float32 NHWC images to logits.
  """
  blocks.check_input_spec("mobilenet_v2", resolution, input_channels,
                          num_classes, min_resolution=32)
  blocks.check_width_multiplier("mobilenet_v2", width_multiplier)
  if last_channels is None:
    last_channels = (blocks.make_divisible(1280 * width_multiplier)
                     if width_multiplier > 1.0 else 1280)
  elif not isinstance(last_channels, int) or last_channels < 1:
    raise ValueError("mobilenet_v2: last_channels must be a positive integer "
                     f"or None for the paper's 1280, got {last_channels!r}.")

  inputs = blocks.model_input(resolution, input_channels)
  x = blocks.conv_bn_relu(inputs, blocks.make_divisible(32 * width_multiplier),
                          3, 2, name="stem")
  index = 0
  for expand, channels, repeats, first_stride in MOBILENET_V2_STAGES:
    out_channels = blocks.make_divisible(int(channels * width_multiplier))
    for repeat in range(repeats):
      index += 1
      x = blocks.inverted_residual(
          x, out_channels, 3, first_stride if repeat == 0 else 1, expand,
          name=f"block{index}")
  x = blocks.conv_bn_relu(x, last_channels, 1, 1, name="head_conv")
  outputs = blocks.classifier_head(x, num_classes, dropout)
  return keras.Model(inputs, outputs, name="mobilenet_v2")
