"""Finding and replacing the classifier head."""
from typing import Optional

import numpy as np

from tflite_tl._compat import keras
from tflite_tl.rewrite import graph

# Layers that may sit between the classifier and the model output without
# depending on the number of classes.
_PASS_THROUGH = (keras.layers.Activation, keras.layers.Softmax,
                 keras.layers.Dropout)


def find_classifier(model: keras.Model) -> keras.layers.Dense:
  """The Dense layer producing the model's (single) output.

  Only Activation, Softmax or Dropout layers may follow it.
  """
  graph.check_functional(model, "find_classifier")
  if len(model.outputs) != 1:
    raise graph.UnsupportedModelError(
        f"model '{model.name}' has {len(model.outputs)} outputs; the "
        "classifier head can be found only in single-output models.")
  layer = graph.producer(model.outputs[0])
  seen = []
  while isinstance(layer, _PASS_THROUGH):
    seen.append(layer.name)
    layer = graph.producer(layer.input)
  if not isinstance(layer, keras.layers.Dense):
    raise graph.UnsupportedModelError(
        f"model '{model.name}': the output comes from layer '{layer.name}' "
        f"({type(layer).__name__}) after {seen or 'no'} pass-through layers; "
        "the classifier must be a Dense layer, optionally followed by "
        "Activation, Softmax or Dropout layers.")
  return layer


def replace_classifier(model: keras.Model, num_classes: Optional[int],
                       seed: int = 0) -> keras.Model:
  """Returns a copy of ``model`` with a fresh classifier of ``num_classes``.

  The new Dense keeps the old one's name, class, activation and bias setting;
  its kernel is Glorot-uniform initialised from ``seed`` and its bias is
  zero. ``num_classes=None`` returns an unchanged copy (the head is kept).
  """
  head = find_classifier(model)
  if num_classes is None:
    return graph.rebuild(model)
  if (isinstance(num_classes, bool)
      or not isinstance(num_classes, (int, np.integer)) or num_classes < 2):
    raise ValueError(
        f"replace_classifier: num_classes must be an integer >= 2 (a "
        f"classifier tells two classes or more apart), got "
        f"{num_classes!r}.")

  def clone_layer(layer):
    if layer is head:
      return graph.copy_layer(
          layer, units=num_classes,
          kernel_initializer=keras.initializers.serialize(
              keras.initializers.GlorotUniform(seed=seed)),
          bias_initializer="zeros")
    return graph.copy_layer(layer)

  def weight_source(old, new):
    return None if old is head else graph.named_weights(old)

  return graph.rebuild(model, clone_layer=clone_layer,
                       weight_source=weight_source)
