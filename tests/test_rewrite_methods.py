import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl import rewrite


def _model():
  inp = keras.Input((16, 16, 3))
  x = keras.layers.Conv2D(8, 3, 2, padding="same", use_bias=False,
                          name="stem")(inp)
  x = keras.layers.BatchNormalization(name="stem_bn")(x)
  x = keras.layers.ReLU(6.0)(x)
  block_in = x
  x = keras.layers.Conv2D(24, 1, use_bias=False, name="e")(x)
  x = keras.layers.BatchNormalization(name="e_bn")(x)
  x = keras.layers.ReLU(6.0)(x)
  x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False,
                                   name="d")(x)
  x = keras.layers.BatchNormalization(name="d_bn")(x)
  x = keras.layers.ReLU(6.0)(x)
  x = keras.layers.Conv2D(8, 1, use_bias=False, name="p")(x)
  x = keras.layers.BatchNormalization(name="p_bn")(x)
  x = keras.layers.Add()([block_in, x])
  x = keras.layers.GlobalAveragePooling2D()(x)
  model = keras.Model(inp, keras.layers.Dense(4, name="fc")(x))
  rng = np.random.RandomState(0)
  for l in model.layers:
    if isinstance(l, keras.layers.BatchNormalization):
      l.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in l.get_weights()])
  return model


MODEL = _model()
X = np.random.RandomState(1).rand(2, 16, 16, 3).astype(np.float32)
HEAD = {"fc/kernel", "fc/bias"}
BNS = ("stem_bn", "e_bn", "d_bn", "p_bn")
BRANCH = {f"d_lite_{w}" for w in (
    "conv1/kernel", "norm1/gamma", "norm1/beta", "conv2/kernel",
    "norm2/gamma", "norm2/beta")}
EXPECTED = {
    "ft_full": ({"stem/kernel", "e/kernel", "d/depthwise_kernel", "p/kernel"}
                | {f"{b}/{w}" for b in BNS for w in ("gamma", "beta")}
                | HEAD),
    "ft_last": HEAD,
    "ft_norm_last": {f"{b}/{w}" for b in BNS for w in ("gamma", "beta")}
                    | HEAD,
    "tinytl_b": {"stem/bias", "e/bias", "d/bias", "p/bias"} | HEAD,
    "tinytl_l": BRANCH | HEAD,
    "tinytl_lb": BRANCH | {"stem/bias", "e/bias", "d/bias", "p/bias"} | HEAD,
}


def _trainable(model):
  """``layer/weight`` names of the trainable weights (layer names from the
  layers themselves: variables created by from_config lack the prefix)."""
  ids = {id(w) for w in model.trainable_weights}
  names = {f"{l.name}/{w.name.split('/')[-1].split(':')[0]}"
           for l in model.layers for w in l.weights if id(w) in ids}
  assert len(names) == len(ids)
  return names


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_method_trains_exactly_its_weights(name):
  model = rewrite.apply_method(MODEL, name, num_classes=None)
  assert _trainable(model) == EXPECTED[name]
  # With the head kept, every method computes the original function.
  np.testing.assert_allclose(model(X).numpy(), MODEL(X).numpy(), atol=1e-5)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_new_head_and_config_round_trip(name, tmp_path):
  model = rewrite.apply_method(MODEL, name, num_classes=3)
  assert model.output_shape == (None, 3)
  clone = keras.Model.from_config(model.get_config())
  assert _trainable(clone) == _trainable(model)
  path = str(tmp_path / "m.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  assert _trainable(loaded) == _trainable(model)
  np.testing.assert_allclose(loaded(X).numpy(), model(X).numpy(), atol=1e-6)


def _support_for(method, model, num_classes):
  """The support set methods that select on the user's samples take."""
  if not rewrite.method_needs_support(method):
    return {}
  rs = np.random.RandomState(7)
  x = rs.rand(2 * num_classes, *model.input_shape[1:]).astype(np.float32)
  return {"support": (x, np.arange(2 * num_classes) % num_classes)}


def test_original_model_is_unchanged():
  weights = [w.copy() for w in MODEL.get_weights()]
  names = [l.name for l in MODEL.layers]
  trainable = _trainable(MODEL)
  for name in rewrite.list_methods():
    rewrite.apply_method(MODEL, name, num_classes=3,
                         **_support_for(name, MODEL, 3))
  assert [l.name for l in MODEL.layers] == names
  assert _trainable(MODEL) == trainable
  for a, b in zip(weights, MODEL.get_weights()):
    np.testing.assert_array_equal(a, b)


def test_lite_options_reach_the_branch():
  model = rewrite.apply_method(MODEL, "tinytl_l", norm="batch")
  assert isinstance(model.get_layer("d_lite_norm1"),
                    keras.layers.BatchNormalization)
  with pytest.raises(ValueError, match="does not take option"):
    rewrite.apply_method(MODEL, "tinytl_b", norm="batch")


def test_unknown_method_lists_the_registered_ones():
  with pytest.raises(ValueError, match="ft_full, ft_last, ft_norm_last"):
    rewrite.apply_method(MODEL, "tinytl_xyz")


def test_users_can_register_methods():
  def head_and_stem(model, num_classes=None):
    model = rewrite.apply_method(model, "ft_last", num_classes=num_classes)
    return rewrite.make_layers_trainable(model, ["stem"])

  rewrite.register_method("test_head_and_stem", head_and_stem)
  try:
    assert "test_head_and_stem" in rewrite.list_methods()
    model = rewrite.apply_method(MODEL, "test_head_and_stem")
    assert _trainable(model) == HEAD | {"stem/kernel", "stem/bias"}
    with pytest.raises(ValueError, match="already registered"):
      rewrite.register_method("test_head_and_stem", head_and_stem)
  finally:
    rewrite.methods._REGISTRY.pop("test_head_and_stem")  # pylint: disable=protected-access


def test_same_seed_gives_identical_models():
  a = rewrite.apply_method(MODEL, "tinytl_lb", num_classes=3, seed=7)
  b = rewrite.apply_method(MODEL, "tinytl_lb", num_classes=3, seed=7)
  c = rewrite.apply_method(MODEL, "tinytl_lb", num_classes=3, seed=8)
  for wa, wb in zip(a.get_weights(), b.get_weights()):
    np.testing.assert_array_equal(wa, wb)
  assert not np.array_equal(a.get_layer("d_lite_conv1").kernel.numpy(),
                            c.get_layer("d_lite_conv1").kernel.numpy())


@pytest.mark.slow
@pytest.mark.parametrize("zoo_name", ["proxyless_mobile", "mobilenet_v2",
                                      "mcunet", "tiny"])
def test_zoo_models_keep_their_function_under_every_method(zoo_name):
  from tflite_tl import models  # pylint: disable=import-outside-toplevel
  model = models.get_model(zoo_name, num_classes=10)
  x = np.random.RandomState(5).rand(2, *model.input_shape[1:]).astype(
      np.float32)
  want = model(x).numpy()
  for name in rewrite.list_methods():
    rewritten = rewrite.apply_method(model, name,
                                     **_support_for(name, model, 10))
    np.testing.assert_allclose(rewritten(x).numpy(), want, atol=1e-4,
                               err_msg=f"{zoo_name} / {name}")
  lite = rewrite.apply_method(model, "tinytl_lb", num_classes=3)
  assert sum(l.name.endswith("_lite_add") for l in lite.layers) == sum(
      b.expand is not None for b in rewrite.find_mbconv_blocks(model))
