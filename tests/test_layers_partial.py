import numpy as np

from tflite_tl._compat import keras
from tflite_tl import layers


def _model(trainable_names):
  inp = keras.Input((8, 8, 3))
  x = layers.Conv2D(4, 3, trainable_weight_names=trainable_names, name="c")(inp)
  return keras.Model(inp, x)


def test_bias_only_conv_has_only_bias_trainable():
  model = _model(["bias"])
  assert [w.name for w in model.trainable_weights] == ["c/bias:0"]
  assert [w.name for w in model.non_trainable_weights] == ["c/kernel:0"]


def test_default_keeps_keras_behaviour():
  model = _model(None)
  assert len(model.trainable_weights) == 2


def test_config_round_trip_keeps_trainable_names(tmp_path):
  model = _model(["bias"])
  clone = keras.Model.from_config(model.get_config())
  assert [w.name.split("/")[-1] for w in clone.trainable_weights] == ["bias:0"]
  path = str(tmp_path / "m.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  assert [w.name.split("/")[-1] for w in loaded.trainable_weights] == ["bias:0"]
  x = np.random.RandomState(0).rand(1, 8, 8, 3).astype(np.float32)
  np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_batchnorm_uses_moving_statistics_when_training():
  inp = keras.Input((4,))
  bn = layers.BatchNormalization(trainable_weight_names=["gamma", "beta"])
  model = keras.Model(inp, bn(inp))
  x = np.random.RandomState(0).rand(8, 4).astype(np.float32) * 5
  np.testing.assert_allclose(model(x, training=True).numpy(),
                             model(x, training=False).numpy())
  assert sorted(w.name.split("/")[-1] for w in model.trainable_weights) == [
      "beta:0", "gamma:0"]
