import os

import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl import layers
from tflite_tl import train


def _toy_data(n=96, seed=0):
  """Two linearly separable classes: bright vs dark 8x8 images."""
  rng = np.random.RandomState(seed)
  y = (np.arange(n) % 2).astype(np.int64)
  x = rng.uniform(0.0, 0.2, (n, 8, 8, 1)).astype(np.float32)
  x[y == 1] += 0.8
  return x, y


def _bias_only_model(seed=0):
  keras.utils.set_random_seed(seed)
  inp = keras.Input((8, 8, 1))
  h = layers.Conv2D(4, 3, trainable_weight_names=["bias"], name="conv")(inp)
  h = layers.BatchNormalization(trainable_weight_names=["beta"], name="bn")(h)
  h = keras.layers.ReLU()(h)
  h = keras.layers.GlobalAveragePooling2D()(h)
  out = layers.Dense(2, name="head")(h)
  return keras.Model(inp, out)


def _stock_model(seed=0):
  keras.utils.set_random_seed(seed)
  return keras.Sequential([
      keras.Input((8, 8, 1)),
      keras.layers.Conv2D(4, 3),
      keras.layers.BatchNormalization(),
      keras.layers.ReLU(),
      keras.layers.GlobalAveragePooling2D(),
      keras.layers.Dense(2),
  ])


def _weights(model):
  return {w.name: w.numpy().copy() for w in model.weights}


@pytest.mark.parametrize("optimizer,lr", [("sgd", 0.1), ("adam", 0.05)])
def test_loss_falls(optimizer, lr):
  x, y = _toy_data()
  model = _bias_only_model()
  hist = train.fit(model, x, y, epochs=8, batch_size=16, optimizer=optimizer,
                   learning_rate=lr, progress=False)
  assert hist.epochs == 8
  assert hist.loss[-1] < 0.6 * hist.loss[0]
  assert train.evaluate(model, x, y) > 0.9


def test_frozen_variables_are_bit_identical():
  x, y = _toy_data()
  model = _bias_only_model()
  frozen = {w.name for w in model.non_trainable_weights}
  # kernel, gamma, moving mean/variance of conv and bn
  assert {"conv/kernel:0", "bn/gamma:0", "bn/moving_mean:0",
          "bn/moving_variance:0"} <= frozen
  before = _weights(model)
  train.fit(model, x, y, epochs=2, optimizer="adam", learning_rate=0.1,
            progress=False)
  after = _weights(model)
  for name in frozen:
    np.testing.assert_array_equal(before[name], after[name], err_msg=name)
  for w in model.trainable_weights:
    assert not np.array_equal(before[w.name], after[w.name]), w.name


def test_stock_batchnorm_statistics_frozen_by_default():
  x, y = _toy_data()
  model = _stock_model()
  before = _weights(model)
  train.fit(model, x, y, epochs=1, learning_rate=0.1, progress=False)
  after = _weights(model)
  for w in model.non_trainable_weights:
    np.testing.assert_array_equal(before[w.name], after[w.name])


def test_training_true_updates_stock_batchnorm_statistics():
  x, y = _toy_data()
  model = _stock_model()
  before = _weights(model)
  train.fit(model, x, y, epochs=1, learning_rate=0.1, progress=False,
            training=True)
  moving = [w for w in model.non_trainable_weights if "moving_mean" in w.name]
  assert moving and not np.array_equal(before[moving[0].name],
                                       moving[0].numpy())


def test_same_seed_same_weights():
  x, y = _toy_data()
  runs = []
  for _ in range(2):
    model = _bias_only_model()
    train.fit(model, x, y, epochs=2, batch_size=10, learning_rate=0.1, seed=7,
              label_smoothing=0.1, progress=False,
              augment=lambda b, rng: b[:, :, ::-1] if rng.rand() < 0.5 else b)
    runs.append(_weights(model))
  for name in runs[0]:
    np.testing.assert_array_equal(runs[0][name], runs[1][name], err_msg=name)


def test_different_seed_different_order():
  x, y = _toy_data()
  results = []
  for seed in (1, 2):
    model = _bias_only_model()
    train.fit(model, x, y, epochs=1, batch_size=10, learning_rate=0.1,
              seed=seed, progress=False)
    results.append(model.get_layer("head").bias.numpy())
  assert not np.array_equal(*results)


def test_checkpoint_resume_matches_uninterrupted_run(tmp_path):
  x, y = _toy_data()
  full = _bias_only_model()
  train.fit(full, x, y, epochs=3, optimizer="adam", learning_rate=0.05,
            progress=False)
  ckdir = str(tmp_path / "ck")
  part = _bias_only_model()
  train.fit(part, x, y, epochs=2, optimizer="adam", learning_rate=0.05,
            checkpoint_dir=ckdir, progress=False)
  assert sorted(os.listdir(ckdir)) == ["LATEST", "epoch-0002"]
  resumed = _bias_only_model(seed=99)  # different init, all restored
  hist = train.fit(resumed, x, y, epochs=3, optimizer="adam",
                   learning_rate=0.05, checkpoint_dir=ckdir, resume=True,
                   progress=False)
  assert hist.epochs == 3
  for a, b in zip(full.weights, resumed.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)


def test_validation_accuracy_recorded():
  x, y = _toy_data()
  hist = train.fit(_bias_only_model(), x, y, epochs=2, learning_rate=0.1,
                   validation_data=(x[:20], y[:20]), progress=False)
  assert len(hist.val_accuracy) == 2
  assert all(0.0 <= v <= 1.0 for v in hist.val_accuracy)


def test_on_epoch_end_sees_every_epoch():
  x, y = _toy_data()
  seen = []
  train.fit(_bias_only_model(), x, y, epochs=3, learning_rate=0.1,
            progress=False,
            on_epoch_end=lambda e, h: seen.append((e, len(h.loss))))
  assert seen == [(1, 1), (2, 2), (3, 3)]


def test_clear_errors():
  x, y = _toy_data()
  model = _bias_only_model()
  with pytest.raises(ValueError, match="expects"):
    train.fit(model, x[:, :4], y, epochs=1, learning_rate=0.1)
  with pytest.raises(ValueError, match="2 outputs"):
    train.fit(model, x, y + 5, epochs=1, learning_rate=0.1)
  with pytest.raises(ValueError, match="learning_rate"):
    train.fit(model, x, y, epochs=1)
  with pytest.raises(ValueError, match="Supported: sgd, adam"):
    train.fit(model, x, y, epochs=1, optimizer="rmsprop", learning_rate=0.1)
  with pytest.raises(ValueError, match="checkpoint_dir"):
    train.fit(model, x, y, epochs=1, learning_rate=0.1, resume=True)
  for w in model.layers:
    w.trainable = False
  with pytest.raises(ValueError, match="no trainable weights"):
    train.fit(model, x, y, epochs=1, learning_rate=0.1)
