"""Inference-mode logits and accuracy, batched."""
import weakref

import numpy as np

from tflite_tl._compat import tf

# One traced inference function per model, with a free batch dimension, so
# repeated evaluation (every epoch) does not retrace.
_INFERENCE = weakref.WeakKeyDictionary()


class _Inference:
  """model(b, training=False) as a callable object.

  TensorFlow counts retraces per Python code object; a lambda would make every
  new model look like a retrace of the previous ones. An instance is its own
  key.
  """

  def __init__(self, model):
    self._model = model

  def __call__(self, batch):
    return self._model(batch, training=False)


def _inference_fn(model):
  fn = _INFERENCE.get(model)
  if fn is None:
    spec = tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32)
    fn = tf.function(_Inference(model), input_signature=[spec])
    _INFERENCE[model] = fn
  return fn


def predict_logits(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
  """The model's outputs (logits) for ``x``, computed with training=False."""
  if batch_size < 1:
    raise ValueError(f"batch_size must be positive, got {batch_size!r}.")
  x = np.asarray(x, np.float32)
  step = _inference_fn(model)
  outputs = [step(tf.constant(x[i:i + batch_size])).numpy()
             for i in range(0, len(x), batch_size)]
  if not outputs:
    raise ValueError("predict_logits needs at least one sample.")
  return np.concatenate(outputs)


def evaluate(model, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
  """Top-1 accuracy in [0, 1] of ``model`` on ``(x, y)``."""
  y = np.asarray(y)
  if len(x) != len(y):
    raise ValueError(f"x has {len(x)} samples but y has {len(y)}.")
  logits = predict_logits(model, x, batch_size)
  return float(np.mean(np.argmax(logits, axis=-1) == y))
