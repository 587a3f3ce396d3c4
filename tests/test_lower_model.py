"""lower_model end to end: Keras gradients, TFLM parity, params I/O, errors."""
import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.layers import BatchNormalization
from tflite_tl.layers import Conv2D
from tflite_tl.layers import Dense
from tflite_tl.layers import DepthwiseConv2D
from tflite_tl.layers.ws_conv import WSConv2D
from tflite_tl.lower import TrainStepModule
from tflite_tl.lower import UnsupportedLayerError
from tflite_tl.lower import lower_model
from tflite_tl.lower import op_counts
from tflite_tl.lower import read_params
from tflite_tl.lower import write_params
from tflite_tl.lower.convert import convert_function
from tflite_tl.lower import assign_to_keras
from tflite_tl.tflm import run_model
from tflite_tl.tflm import run_train_steps


def _bias_only_model():
  """Conv/depthwise/pointwise with frozen kernels and trained biases + head."""
  i = keras.Input((12, 12, 1), name="image")
  x = Conv2D(8, 3, strides=2, padding="same", activation="relu6",
             trainable_weight_names=["bias"], name="c1")(i)
  x = DepthwiseConv2D(3, strides=2, padding="same",
                      trainable_weight_names=["bias"], name="dw")(x)
  x = keras.layers.ReLU(6.0, name="dw_relu")(x)
  x = Conv2D(8, 1, trainable_weight_names=["bias"], name="pw")(x)
  x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
  o = Dense(4, name="fc")(x)
  return keras.Model(i, o)


def _every_layer_model():
  """One of each supported layer kind, all weights trained."""
  keras.utils.set_random_seed(3)
  i = keras.Input((9, 9, 2), name="image")
  x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name="zpad")(i)
  x = keras.layers.Conv2D(8, 3, strides=2, padding="valid", name="c1")(x)
  x = keras.layers.BatchNormalization(name="bn1")(x)
  x = keras.layers.Activation("relu", name="act")(x)
  skip = x
  x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False,
                                   name="dw")(x)
  x = BatchNormalization(name="bn2")(x)
  x = keras.layers.ReLU(6.0)(x)
  x = keras.layers.Conv2D(8, 1, groups=2, activation="relu", name="gconv")(x)
  x = keras.layers.Add(name="add")([x, skip])
  b = keras.layers.AveragePooling2D(2, name="pool")(x)
  b = WSConv2D(8, 3, padding="same", groups=2, use_bias=False, name="ws")(b)
  b = keras.layers.GroupNormalization(groups=2, name="gn",
                                      gamma_initializer="ones")(b)
  b = keras.layers.UpSampling2D(2, interpolation="bilinear", name="up")(b)
  x = keras.layers.Add(name="add2")([x, b])
  x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="c2")(x)
  x = keras.layers.Resizing(3, 3, interpolation="bilinear", name="rs")(x)
  x = keras.layers.Flatten(name="flat")(x)
  x = keras.layers.Dropout(0.5, name="drop")(x)
  o = keras.layers.Dense(5, name="fc")(x)
  model = keras.Model(i, o)
  # Non-trivial BatchNorm statistics.
  rs = np.random.RandomState(0)
  for layer in model.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      c = layer.moving_mean.shape[0]
      layer.moving_mean.assign(rs.randn(c).astype(np.float32) * 0.1)
      layer.moving_variance.assign(rs.rand(c).astype(np.float32) + 0.5)
  return model


def _batches(model, batch, steps, num_classes, seed=0):
  rs = np.random.RandomState(seed)
  shape = model.inputs[0].shape[1:]
  return [(rs.rand(batch, *shape).astype(np.float32),
           rs.randint(0, num_classes, batch).astype(np.int32))
          for _ in range(steps)]


def _module_grads(module, x, y):
  with tf.GradientTape() as tape:
    loss = module._loss(module._train_program(x), y)  # pylint: disable=protected-access
  return loss, tape.gradient(loss, module.params)


def _keras_grads(model, x, y):
  with tf.GradientTape() as tape:
    logits = model(x, training=False)
    loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
        y, logits, from_logits=True))
  return loss, tape.gradient(loss, model.trainable_weights)


@pytest.mark.parametrize("builder", [_bias_only_model, _every_layer_model])
def test_gradients_match_keras(builder):
  model = builder()
  module = TrainStepModule(model, batch_size=3, learning_rate=0.1)
  (x, y), = _batches(model, 3, 1, int(model.outputs[0].shape[-1]))
  loss, grads = _module_grads(module, x, y)
  ref_loss, ref_grads = _keras_grads(model, x, y)
  np.testing.assert_allclose(loss.numpy(), ref_loss.numpy(), rtol=1e-5)
  assert len(grads) == len(ref_grads) == len(model.trainable_weights)
  for w, g, r in zip(model.trainable_weights, grads, ref_grads):
    np.testing.assert_allclose(
        g.numpy(), r.numpy(), rtol=1e-4, atol=1e-5 * np.abs(r.numpy()).max(),
        err_msg=w.name)


@pytest.fixture(scope="module")
def bias_only():
  """(model, lowered) shared by the tests below: lowering costs seconds."""
  model = _bias_only_model()
  return model, lower_model(model, batch_size=2, learning_rate=0.2,
                            momentum=0.5)


def test_bias_only_step_runs_in_tflm_like_tf(bias_only):
  model, lowered = bias_only
  batches = _batches(model, 2, 4, 4)
  tflm = run_train_steps(lowered.train_tflite, batches, measure_arena=True)
  tf_losses = [float(lowered.module.train_step(x, y)["loss"])
               for x, y in batches]
  np.testing.assert_allclose(tflm.losses, tf_losses, rtol=1e-5)
  assert tf_losses[-1] != tf_losses[0]
  for name, value in lowered.module.param_values().items():
    np.testing.assert_allclose(tflm.params[name], value, rtol=1e-5,
                               atol=1e-6, err_msg=name)
  # Momentum buffers are variables of the step too.
  assert "fc/bias/momentum" in tflm.params
  assert 0 < tflm.arena.head < tflm.arena.total


def test_frozen_kernels_get_no_kernel_gradient_ops():
  """Bias-only: no TRANSPOSE/BATCH_MATMUL for weight grads, and the backward
  pass stops at the first trained layer (no input grad of c1)."""
  model = _bias_only_model()
  for layer in model.layers:
    if layer.name == "fc":
      layer.trainable = False  # only conv biases: no matmul weight grad
  module = TrainStepModule(model, batch_size=2, learning_rate=0.1)
  ops = op_counts(convert_function(module, module.train_step))
  assert "TRANSPOSE" not in ops and "BATCH_MATMUL" not in ops
  # Forward c1 only: c1 needs no input gradient, and the pointwise pw
  # (forward + input gradient) lowers to FULLY_CONNECTED like fc does.
  assert ops["CONV_2D"] == 1
  assert ops["FULLY_CONNECTED"] == 4
  # Forward dw + its input gradient.
  assert ops["DEPTHWISE_CONV_2D"] == 2


def test_backward_order_keeps_gradients_short_lived(bias_only):
  """Memory-aware order: every bias-gradient SUM runs before the input
  gradient that reads the same output gradient, and ReLUs are fused into
  their producers (their masks are read off the outputs)."""
  from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=import-outside-toplevel
  train = bias_only[1].train_tflite
  assert "RELU6" not in op_counts(train) and "RELU" not in op_counts(train)
  model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(train, 0))
  sg = model.subgraphs[0]
  names = {v: k for k, v in vars(schema.BuiltinOperator).items()
           if not k.startswith("_")}
  consumers = {}
  for index, op in enumerate(sg.operators):
    code = model.operatorCodes[op.opcodeIndex]
    name = names[max(code.builtinCode, code.deprecatedBuiltinCode)]
    for t in op.inputs:
      consumers.setdefault(t, []).append((index, name))
  checked = 0
  for uses in consumers.values():
    sums = [i for i, n in uses if n == "SUM"]
    grads = [i for i, n in uses if n in ("CONV_2D", "DEPTHWISE_CONV_2D",
                                         "FULLY_CONNECTED", "PAD",
                                         "RESHAPE")]
    if sums and grads:
      checked += 1
      assert max(sums) < min(grads), uses
  assert checked >= 2


def test_params_read_write_round_trip_and_run(bias_only):
  _, lowered = bias_only
  # A copy (same frozen weights): this test overwrites the trained ones.
  model = keras.models.clone_model(bias_only[0])
  model.set_weights(bias_only[0].get_weights())
  stored = read_params(lowered.train_tflite)
  assert sorted(stored) == sorted(
      lowered.param_names + [n + "/momentum" for n in lowered.param_names])
  assert all(not stored[n + "/momentum"].any() for n in lowered.param_names)
  initial = {n: stored[n] for n in lowered.param_names}
  for name, w in zip(lowered.param_names, bias_only[0].trainable_weights):
    np.testing.assert_array_equal(initial[name], w.numpy())
  rs = np.random.RandomState(5)
  new = {n: rs.randn(*v.shape).astype(np.float32) for n, v in initial.items()}
  # Zero biases share one constant in the flatbuffer; each must get its own.
  updated = write_params(lowered.train_tflite, new)
  got = read_params(updated)
  for name in new:
    np.testing.assert_array_equal(got[name], new[name])
  # The predict model keeps the trained parameters as variables (not the
  # momentum buffers) with the same names and starting values.
  predict_params = read_params(lowered.predict_tflite)
  assert sorted(predict_params) == sorted(lowered.param_names)
  for name in initial:
    np.testing.assert_array_equal(predict_params[name], initial[name])
  # The rewritten model trains from the new values in TFLM like TF does.
  assign_to_keras(model, new)
  module = TrainStepModule(model, batch_size=2, learning_rate=0.2,
                           momentum=0.5)
  batches = _batches(model, 2, 2, 4)
  tflm = run_train_steps(updated, batches, read_params=False)
  tf_losses = [float(module.train_step(x, y)["loss"]) for x, y in batches]
  np.testing.assert_allclose(tflm.losses, tf_losses, rtol=1e-5)
  x = batches[0][0][:1]
  # Given the new values, it computes what Keras computes with them.
  predict = write_params(lowered.predict_tflite, new)
  logits = run_model(predict, [[x]]).outputs[0][0]
  np.testing.assert_allclose(logits, model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_write_params_rejects_unknown_names_and_shapes(bias_only):
  _, lowered = bias_only
  with pytest.raises(KeyError, match="nope"):
    write_params(lowered.train_tflite, {"nope": np.zeros(3)})
  with pytest.raises(ValueError, match="fc/bias"):
    write_params(lowered.train_tflite, {"fc/bias": np.zeros(3)})


def test_lowering_is_deterministic(bias_only):
  model, lowered = bias_only
  again = TrainStepModule(model, batch_size=2, learning_rate=0.2,
                          momentum=0.5)
  # bias_only's module has trained since; the bytes hold initial values.
  assert convert_function(again, again.train_step) == lowered.train_tflite


def test_unsupported_layer_is_named():
  i = keras.Input((8, 8, 1))
  x = keras.layers.Conv2D(4, 3, name="c")(i)
  x = keras.layers.LeakyReLU(name="the_leaky_relu")(x)
  o = keras.layers.Dense(3)(keras.layers.Flatten()(x))
  with pytest.raises(UnsupportedLayerError,
                     match="the_leaky_relu.*LeakyReLU.*Supported"):
    TrainStepModule(keras.Model(i, o), batch_size=1, learning_rate=0.1)


def test_unsupported_activation_is_named():
  i = keras.Input((8, 8, 1))
  x = keras.layers.Conv2D(4, 3, activation="tanh", name="tanh_conv")(i)
  o = keras.layers.Dense(3)(keras.layers.Flatten()(x))
  with pytest.raises(UnsupportedLayerError, match="tanh_conv.*tanh"):
    TrainStepModule(keras.Model(i, o), batch_size=1, learning_rate=0.1)


def test_nothing_to_train_is_an_error():
  model = _bias_only_model()
  for layer in model.layers:
    layer.trainable = False
  with pytest.raises(ValueError, match="no trainable weights"):
    TrainStepModule(model, batch_size=1, learning_rate=0.1)


def test_softmax_output_trains_on_logits_and_infers_probabilities():
  i = keras.Input((4, 4, 1))
  x = keras.layers.Flatten()(i)
  o = keras.layers.Dense(3, activation="softmax", name="fc")(x)
  model = keras.Model(i, o)
  module = TrainStepModule(model, batch_size=2, learning_rate=0.1)
  x = np.random.RandomState(0).rand(1, 4, 4, 1).astype(np.float32)
  probs = module.infer(x)["probabilities"].numpy()
  np.testing.assert_allclose(probs, model(x).numpy(), rtol=1e-5)
