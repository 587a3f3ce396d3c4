"""Optimizer construction from a name or an existing Keras optimizer."""
from typing import Union

from tflite_tl._compat import keras

OPTIMIZERS = ("sgd", "adam")


def make_optimizer(optimizer: Union[str, "keras.optimizers.Optimizer"],
                   learning_rate, momentum: float = 0.9):
  """``"sgd"`` (with ``momentum``; 0 = plain SGD as on the device) or ``"adam"``.

  ``learning_rate`` is a positive float or a
  ``keras.optimizers.schedules.LearningRateSchedule`` (e.g. ``CosineDecay``),
  evaluated at the optimizer's step count. A Keras optimizer instance is
  returned unchanged (its own learning rate applies).
  """
  if isinstance(optimizer, keras.optimizers.Optimizer):
    return optimizer
  if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZERS:
    raise ValueError(f"Unknown optimizer {optimizer!r}. Supported: "
                     f"{', '.join(OPTIMIZERS)}, or a keras.optimizers.Optimizer "
                     "instance.")
  is_schedule = isinstance(learning_rate,
                           keras.optimizers.schedules.LearningRateSchedule)
  if not is_schedule and (learning_rate is None or learning_rate <= 0):
    raise ValueError(f"learning_rate must be positive or a "
                     f"LearningRateSchedule, got {learning_rate!r}.")
  if optimizer.lower() == "sgd":
    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)
  return keras.optimizers.Adam(learning_rate=learning_rate)
