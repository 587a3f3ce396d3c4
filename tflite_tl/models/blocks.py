"""Building blocks shared by the model zoo.

Every network in :mod:`tflite_tl.models` is a functional tf-keras model made
of stock layers only: ``Conv2D``/``DepthwiseConv2D`` with ``padding="same"``
and no bias (a BatchNormalization follows each of them), separate ``ReLU``
layers, ``Add``, ``GlobalAveragePooling2D``, ``Dropout`` and a ``Dense``
classifier that emits logits. The rewrite and lowering stages recognise blocks
by graph structure; the readable, unique layer names built here
(``<prefix>_expand``, ``<prefix>_dw_bn``...) are for people reading the graph.
"""
from typing import Optional, Tuple

from tflite_tl._compat import keras

# Momentum/epsilon of the reference implementations (PyTorch momentum 0.1 ==
# Keras momentum 0.9); epsilon 1e-3 matches keras.applications and ProxylessNAS.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-3


def make_divisible(value: float, divisor: int = 8,
                   min_value: Optional[int] = None) -> int:
  """Rounds a channel count to a multiple of ``divisor`` (MobileNet rule).

  Rounds to the nearest multiple but never goes below 90 % of ``value``, the
  rule of the MobileNetV2 reference code, so width multipliers give the
  published channel counts.
  """
  if min_value is None:
    min_value = divisor
  rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
  if rounded < 0.9 * value:
    rounded += divisor
  return rounded


def check_input_spec(model_name: str, resolution: int, input_channels: int,
                     num_classes: int, min_resolution: int = 8) -> None:
  """Raises ValueError with a fix for an unusable builder argument."""
  if not isinstance(resolution, int) or resolution < min_resolution:
    raise ValueError(
        f"{model_name}: resolution must be an integer >= {min_resolution} "
        f"pixels, got {resolution!r}.")
  if not isinstance(input_channels, int) or input_channels < 1:
    raise ValueError(
        f"{model_name}: input_channels must be a positive integer (1 for "
        f"grayscale, 3 for RGB), got {input_channels!r}.")
  if not isinstance(num_classes, int) or num_classes < 2:
    raise ValueError(
        f"{model_name}: num_classes must be an integer >= 2, got "
        f"{num_classes!r}.")


def check_width_multiplier(model_name: str, width_multiplier: float) -> None:
  if not isinstance(width_multiplier, (int, float)) or width_multiplier <= 0:
    raise ValueError(
        f"{model_name}: width_multiplier must be a positive number (e.g. "
        f"0.35, 0.5, 1.0), got {width_multiplier!r}.")


def model_input(resolution: int, input_channels: int) -> keras.layers.Layer:
  """A float32 NHWC image input of the given square resolution."""
  return keras.Input(shape=(resolution, resolution, input_channels),
                     name="image", dtype="float32")


def batch_norm(x, name: str):
  return keras.layers.BatchNormalization(
      momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)(x)


def conv_bn_relu(x, filters: int, kernel_size: int, strides: int, name: str,
                 relu_max: Optional[float] = 6.0):
  """Conv2D (same padding, no bias) -> BN -> ReLU(relu_max).

  ``relu_max=None`` gives a plain ReLU.
  """
  x = keras.layers.Conv2D(filters, kernel_size, strides=strides,
                          padding="same", use_bias=False, name=name)(x)
  x = batch_norm(x, name=f"{name}_bn")
  return keras.layers.ReLU(relu_max, name=f"{name}_relu")(x)


def inverted_residual(x, out_channels: int, kernel_size: int, strides: int,
                      expand_ratio: float, name: str,
                      expanded_channels: Optional[int] = None):
  """MBConv block: [1x1 expand -> BN -> ReLU6] -> kxk depthwise (stride) -> BN
  -> ReLU6 -> 1x1 project -> BN [-> Add with the input].

  The expansion is skipped when it would not widen the input. The residual
  Add is used when the block keeps the resolution and the channel count.
  ``expanded_channels`` overrides ``round(in_channels * expand_ratio)`` for
  configurations that publish the hidden width directly.
  """
  in_channels = x.shape[-1]
  hidden = (expanded_channels if expanded_channels is not None
            else int(round(in_channels * expand_ratio)))
  inputs = x
  if hidden != in_channels:
    x = conv_bn_relu(x, hidden, 1, 1, name=f"{name}_expand")
  x = keras.layers.DepthwiseConv2D(kernel_size, strides=strides,
                                   padding="same", use_bias=False,
                                   name=f"{name}_dw")(x)
  x = batch_norm(x, name=f"{name}_dw_bn")
  x = keras.layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
  x = keras.layers.Conv2D(out_channels, 1, padding="same", use_bias=False,
                          name=f"{name}_project")(x)
  x = batch_norm(x, name=f"{name}_project_bn")
  if strides == 1 and in_channels == out_channels:
    x = keras.layers.Add(name=f"{name}_add")([inputs, x])
  return x


def classifier_head(x, num_classes: int, dropout: float):
  """Global average pool -> Dropout -> Dense logits (no softmax)."""
  x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
  if dropout > 0:
    x = keras.layers.Dropout(dropout, name="dropout")(x)
  return keras.layers.Dense(num_classes, name="logits")(x)


MBConvSpec = Tuple[int, int, int, float]
"""(out_channels, kernel_size, stride, expand_ratio) of one MBConv block."""
