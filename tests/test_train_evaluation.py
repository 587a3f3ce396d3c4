import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl.train import evaluate, predict_logits


def _model():
  keras.utils.set_random_seed(0)
  return keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                           keras.layers.Dropout(0.9)])


def test_logits_batched_equal_unbatched_and_inference_mode():
  model = _model()
  x = np.random.RandomState(0).rand(10, 3).astype(np.float32)
  expected = model(x, training=False).numpy()  # Dropout off
  np.testing.assert_allclose(predict_logits(model, x, batch_size=3), expected,
                             rtol=1e-6)


def test_accuracy():
  model = _model()
  x = np.random.RandomState(1).rand(8, 3).astype(np.float32)
  y = np.argmax(model(x, training=False).numpy(), -1)
  assert evaluate(model, x, y) == 1.0
  assert evaluate(model, x, (y + 1) % 4) == 0.0


def test_errors():
  with pytest.raises(ValueError, match="samples"):
    evaluate(_model(), np.zeros((2, 3), np.float32), np.zeros(3))
