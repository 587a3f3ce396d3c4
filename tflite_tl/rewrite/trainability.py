"""Choosing which weights train: freeze, biases only, or any per-weight rule.

``model.trainable_weights`` is the single source of truth for what a host
trainer or the on-device train step updates. These passes set it per weight:
a layer whose weights are all frozen gets ``trainable=False``; a layer that
trains only some of its weights becomes the per-weight trainable counterpart
of its class (:mod:`tflite_tl.layers.partial`) with ``trainable_weight_names``.
BatchNorm layers always become :class:`tflite_tl.layers.BatchNormalization`
(frozen statistics), which is how they run in the on-device train step.
"""
from typing import AbstractSet, Callable, FrozenSet

from tflite_tl._compat import keras
from tflite_tl.layers.partial import PartiallyTrainableMixin
from tflite_tl.layers.partial import PARTIAL_LAYERS
from tflite_tl.layers.partial import partial_class_for
from tflite_tl.rewrite import graph

# Weights that are state, not parameters: never trainable.
_STATE_WEIGHTS = frozenset({"moving_mean", "moving_variance"})

TrainableRule = Callable[[keras.layers.Layer, FrozenSet[str]],
                         AbstractSet[str]]
"""``rule(layer, currently_trainable) -> names of the weights to train``."""


def trainable_names(layer) -> FrozenSet[str]:
  """Short names (``"kernel"``, ``"bias"``...) of ``layer``'s trainable weights."""
  return frozenset(graph.weight_short_name(w) for w in layer.trainable_weights)


def parameter_names(layer) -> FrozenSet[str]:
  """Short names of the weights that could be trained (state excluded)."""
  return frozenset(graph.weight_short_name(w) for w in layer.weights
                   ) - _STATE_WEIGHTS


def _partial_class(layer):
  cls = layer.__class__
  if issubclass(cls, PartiallyTrainableMixin):
    return cls
  partial = partial_class_for(cls)
  if partial is None:
    supported = ", ".join(sorted(c.__name__ for c in PARTIAL_LAYERS))
    raise graph.UnsupportedModelError(
        f"layer '{layer.name}' ({cls.__name__}) cannot train only some of its "
        f"weights; per-weight trainability is supported for {supported} and "
        "WSConv2D. Train all of this layer's weights or none of them.")
  return partial


def _clone_with_trainable(layer, wanted: FrozenSet[str]):
  names = parameter_names(layer)
  if isinstance(layer, keras.layers.BatchNormalization):
    # Stock Keras BatchNorm normalises with batch statistics while training;
    # the device (and tflite_tl's BatchNormalization) uses the frozen moving
    # statistics, so every rewritten BatchNorm becomes the latter.
    layer_class = _partial_class(layer)
    if wanted == names:
      return graph.copy_layer(layer, layer_class, trainable=True,
                              trainable_weight_names=None)
    return graph.copy_layer(layer, layer_class, trainable=bool(wanted),
                            trainable_weight_names=sorted(wanted))
  if not names:
    return graph.copy_layer(layer)
  if not wanted:
    return graph.copy_layer(layer, trainable=False)
  if wanted == names:
    if isinstance(layer, PartiallyTrainableMixin):
      return graph.copy_layer(layer, trainable=True,
                              trainable_weight_names=None)
    return graph.copy_layer(layer, trainable=True)
  return graph.copy_layer(layer, _partial_class(layer), trainable=True,
                          trainable_weight_names=sorted(wanted))


def set_trainable(model: keras.Model, rule: TrainableRule) -> keras.Model:
  """Returns a copy of ``model`` whose trainable weights follow ``rule``.

  ``rule(layer, currently_trainable)`` gets each layer of the original model
  with the short names of its currently trainable weights and returns the
  names to train; names the layer does not have are ignored.
  """
  graph.check_functional(model, "set_trainable")

  def clone_layer(layer):
    wanted = frozenset(rule(layer, trainable_names(layer)))
    return _clone_with_trainable(layer, wanted & parameter_names(layer))

  return graph.rebuild(model, clone_layer=clone_layer)


def freeze(model: keras.Model) -> keras.Model:
  """Returns a copy of ``model`` with no trainable weights."""
  return set_trainable(model, lambda layer, current: frozenset())


def make_biases_trainable(model: keras.Model) -> keras.Model:
  """Returns a copy of ``model`` that also trains every layer's ``bias``.

  Weights already trainable stay trainable. BatchNorm layers have ``beta``
  rather than ``bias``; fold them first (:func:`fold_batch_norm`) to train
  the folded conv biases, TinyTL's memory-cheap update.
  """
  return set_trainable(model, lambda layer, current: current | {"bias"})


def make_layers_trainable(model: keras.Model, layer_names) -> keras.Model:
  """Returns a copy of ``model`` that also trains all weights of the named layers."""
  layer_names = set(layer_names)
  unknown = layer_names - {l.name for l in model.layers}
  if unknown:
    raise ValueError(
        f"make_layers_trainable: no layer named {sorted(unknown)} in model "
        f"'{model.name}'.")
  return set_trainable(
      model, lambda layer, current: (parameter_names(layer)
                                     if layer.name in layer_names else current))
