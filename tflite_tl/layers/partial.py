"""Keras layers whose weights can be trained selectively (e.g. bias only).

Keras freezes whole layers (``layer.trainable``). TinyTL trains a conv's bias
while its kernel stays frozen, so trainability must be per weight. These are the
stock tf-keras layers with one extra config entry, ``trainable_weight_names``:
``None`` keeps Keras' behaviour, otherwise only the named weights (``"kernel"``,
``"bias"``, ``"depthwise_kernel"``, ``"gamma"``, ``"beta"``) are created
trainable. ``model.trainable_weights`` is then exactly the set to train, on the
host and on the device, and the choice survives ``get_config``/``from_config``
and saving.
"""
from typing import Iterable, Optional

from tflite_tl._compat import keras

_PACKAGE = "tflite_tl"


class PartiallyTrainableMixin:
  """Creates only the weights named in ``trainable_weight_names`` trainable."""

  def __init__(self, *args, trainable_weight_names: Optional[Iterable[str]] = None,
               **kwargs):
    super().__init__(*args, **kwargs)
    self.trainable_weight_names = (
        None if trainable_weight_names is None
        else sorted(set(trainable_weight_names)))

  def add_weight(self, name=None, *args, trainable=None, **kwargs):
    if (self.trainable_weight_names is not None
        and name not in self.trainable_weight_names):
      trainable = False
    return super().add_weight(name, *args, trainable=trainable, **kwargs)

  def get_config(self):
    config = super().get_config()
    config["trainable_weight_names"] = self.trainable_weight_names
    return config


@keras.utils.register_keras_serializable(package=_PACKAGE)
class Conv2D(PartiallyTrainableMixin, keras.layers.Conv2D):
  """``keras.layers.Conv2D`` with per-weight trainability."""


@keras.utils.register_keras_serializable(package=_PACKAGE)
class DepthwiseConv2D(PartiallyTrainableMixin, keras.layers.DepthwiseConv2D):
  """``keras.layers.DepthwiseConv2D`` with per-weight trainability."""


@keras.utils.register_keras_serializable(package=_PACKAGE)
class Dense(PartiallyTrainableMixin, keras.layers.Dense):
  """``keras.layers.Dense`` with per-weight trainability."""


@keras.utils.register_keras_serializable(package=_PACKAGE)
class BatchNormalization(PartiallyTrainableMixin,
                         keras.layers.BatchNormalization):
  """BatchNorm with per-weight trainability and frozen statistics.

  Fine-tuning on a device uses batches of 1-8 samples, where batch statistics
  are noise; the lowered train step therefore applies BatchNorm as the affine
  map given by the moving statistics. This layer does the same on the host, so
  host training and on-device training optimise the same function.
  """

  def call(self, inputs, training=None):
    del training
    return super().call(inputs, training=False)


PARTIAL_LAYERS = {
    keras.layers.Conv2D: Conv2D,
    keras.layers.DepthwiseConv2D: DepthwiseConv2D,
    keras.layers.Dense: Dense,
    keras.layers.BatchNormalization: BatchNormalization,
}


def partial_class_for(layer_class):
  """The per-weight trainable counterpart of a stock Keras layer class."""
  if layer_class in PARTIAL_LAYERS.values():
    return layer_class
  return PARTIAL_LAYERS.get(layer_class)
