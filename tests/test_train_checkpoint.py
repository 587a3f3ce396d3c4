import os

import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl.train import History, make_optimizer
from tflite_tl.train import checkpoint


def _model(units=3):
  keras.utils.set_random_seed(0)
  return keras.Sequential([keras.Input((2,)), keras.layers.Dense(units)])


def test_save_restore_round_trip(tmp_path):
  model, opt = _model(), make_optimizer("adam", 0.1)
  opt.build(model.trainable_weights)
  history = History()
  history.append(1.0, 0.5, None)
  d = str(tmp_path)
  checkpoint.save(d, 1, model, opt, history)
  checkpoint.save(d, 2, model, opt, history)
  assert sorted(os.listdir(d)) == ["LATEST", "epoch-0002"]
  epoch, path = checkpoint.latest(d)
  assert epoch == 2
  other, opt2 = _model(), make_optimizer("adam", 0.1)
  other.layers[0].kernel.assign(np.zeros((2, 3), np.float32))
  restored = checkpoint.restore(path, other, opt2)
  assert restored.loss == [1.0]
  np.testing.assert_array_equal(other.layers[0].kernel.numpy(),
                                model.layers[0].kernel.numpy())


def test_no_checkpoint_is_none(tmp_path):
  assert checkpoint.latest(str(tmp_path)) is None


def test_dangling_pointer(tmp_path):
  (tmp_path / "LATEST").write_text("epoch-0007")
  with pytest.raises(ValueError, match="missing"):
    checkpoint.latest(str(tmp_path))


def test_mismatched_model(tmp_path):
  model, opt = _model(3), make_optimizer("sgd", 0.1)
  checkpoint.save(str(tmp_path), 1, model, opt, History())
  _, path = checkpoint.latest(str(tmp_path))
  with pytest.raises(ValueError, match="does not match model"):
    checkpoint.restore(path, _model(4), make_optimizer("sgd", 0.1))
