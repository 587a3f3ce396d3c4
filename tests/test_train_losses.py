import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl.train import smoothed_targets, softmax_cross_entropy


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_matches_keras(eps):
  rng = np.random.RandomState(0)
  logits = rng.randn(6, 4).astype(np.float32)
  labels = rng.randint(0, 4, 6)
  ours = softmax_cross_entropy(logits, labels, eps).numpy()
  ref = keras.losses.CategoricalCrossentropy(
      from_logits=True, label_smoothing=eps)(np.eye(4)[labels], logits).numpy()
  np.testing.assert_allclose(ours, ref, rtol=1e-6)


def test_smoothed_targets_sum_to_one():
  t = smoothed_targets(np.array([2]), 5, 0.5).numpy()
  np.testing.assert_allclose(t, [[0.1, 0.1, 0.6, 0.1, 0.1]], rtol=1e-6)


def test_bad_smoothing():
  with pytest.raises(ValueError, match="label_smoothing"):
    smoothed_targets(np.array([0]), 2, 1.0)
