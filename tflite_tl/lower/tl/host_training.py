"""Host training with the device's own int8 train step (quantization-aware).

``fit_int8`` runs :class:`QuantizedTrainStep` (the TF reference of the int8
kernel-flavor graph: TFLM's integer forward pass, float backward, SGD with
quantization-aware scaling or without it) over the data for some epochs and
copies the result back into the Keras model. Host accuracy from it describes
what the board's train step does, not what float training would do;
``evaluate_int8`` scores with the int8 forward pass of the predict graph.

The step has the device's fixed batch size: each epoch is a seeded
permutation of the data cut into full batches (the last one completed with
samples from the start of the permutation).
"""
import dataclasses
from typing import Callable, List, Optional

import numpy as np

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.lower.lowering import assign_to_keras
from tflite_tl.lower.tl import quantization as quant
from tflite_tl.lower.tl.reference import QuantizedTrainStep
from tflite_tl.lower.tl.rule_base import Policy

Augment = Callable[[np.ndarray, np.random.RandomState], np.ndarray]


@dataclasses.dataclass
class Int8History:
  """Mean loss per epoch of the int8 train step (host, device arithmetic)."""
  loss: List[float]
  steps: int
  source: str = "host, the device's int8 train step (TFLM arithmetic)"


def int8_policy(model: keras.Model, calibration_images: np.ndarray, *,
                learning_rate: float, qas: bool = True) -> Policy:
  """The int8 policy (calibrated scales) a lowering of ``model`` uses."""
  return Policy(precision="int8", learning_rate=float(learning_rate), qas=qas,
                quantization=quant.ranges_to_quantization(
                    quant.calibrate(model, calibration_images)))


def fit_int8(model: keras.Model, x: np.ndarray, y: np.ndarray, *,
             epochs: int, batch_size: int, learning_rate: float,
             calibration_images: Optional[np.ndarray] = None, qas: bool = True,
             label_smoothing: float = 0.0, seed: int = 0,
             augment: Optional[Augment] = None,
             policy: Optional[Policy] = None) -> Int8History:
  """Trains ``model.trainable_weights`` in place with the int8 device step.

  ``calibration_images`` default to ``x``; pass ``policy`` to reuse the
  scales of an existing lowering.
  """
  x = np.asarray(x, np.float32)
  y = np.asarray(y, np.int32)
  if len(x) == 0 or len(x) != len(y):
    raise ValueError(f"fit_int8: {len(x)} images and {len(y)} labels; need "
                     "as many labels as images, at least one.")
  if epochs < 1 or batch_size < 1:
    raise ValueError(f"fit_int8: epochs ({epochs}) and batch_size "
                     f"({batch_size}) must be >= 1.")
  if policy is None:
    policy = int8_policy(model, x if calibration_images is None
                         else calibration_images,
                         learning_rate=learning_rate, qas=qas)
  step_module = QuantizedTrainStep(model, batch_size=batch_size,
                                   policy=policy,
                                   label_smoothing=label_smoothing)
  step = tf.function(step_module.train_step)
  history = Int8History([], 0)
  for epoch in range(epochs):
    order = np.random.RandomState([seed, epoch]).permutation(len(x))
    batches = -(-len(order) // batch_size)
    order = np.resize(order, batches * batch_size)
    losses = []
    for b in range(batches):
      idx = order[b * batch_size:(b + 1) * batch_size]
      xb = x[idx]
      if augment is not None:
        xb = augment(xb, np.random.RandomState([seed, epoch, b]))
      losses.append(float(step(xb, y[idx])["loss"]))
      history.steps += 1
    history.loss.append(float(np.mean(losses)))
  assign_to_keras(model, step_module.param_values())
  return history


def evaluate_int8(model: keras.Model, x: np.ndarray, y: np.ndarray, *,
                  policy: Policy, batch_size: int = 64) -> float:
  """Top-1 accuracy of the int8 forward pass (the predict graph's values)."""
  reference = QuantizedTrainStep(model, batch_size=1, policy=policy)
  predict = tf.function(reference.predict)
  x = np.asarray(x, np.float32)
  correct = 0
  for start in range(0, len(x), batch_size):
    logits = predict(x[start:start + batch_size]).numpy()
    correct += int(np.sum(np.argmax(logits, -1) == y[start:start + batch_size]))
  return correct / max(len(x), 1)
