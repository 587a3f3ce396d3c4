"""A tiny lowered train step shared by the error-catalogue tests (lowered
once per test process)."""
import functools

from tflite_tl import lower
from tflite_tl import rewrite
from tflite_tl._compat import keras

CLASSES = 3
IMAGE = (8, 8, 1)


@functools.lru_cache(maxsize=None)
def train_step(method: str = "ft_last", learning_rate: float = 0.01,
               momentum: float = 0.0) -> bytes:
  """train.tflite (builtin flavor, batch 2) of a one-conv CNN."""
  keras.utils.set_random_seed(0)
  inputs = keras.Input(IMAGE)
  x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
  x = keras.layers.GlobalAveragePooling2D()(x)
  model = keras.Model(inputs, keras.layers.Dense(CLASSES, name="head")(x))
  model = rewrite.apply_method(model, method, num_classes=CLASSES)
  return lower.lower_model(model, batch_size=2, learning_rate=learning_rate,
                           momentum=momentum).train_tflite
