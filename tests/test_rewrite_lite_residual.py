import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl import layers
from tflite_tl import rewrite
from tflite_tl.layers.ws_conv import WSConv2D
from tflite_tl.rewrite import lite_residual


def _block(x, out, stride, expand, name, se=False):
  inputs, cin = x, x.shape[-1]
  if expand > 1:
    x = keras.layers.Conv2D(cin * expand, 1, use_bias=False,
                            name=f"{name}_e")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_ebn")(x)
    x = keras.layers.ReLU(6.0, name=f"{name}_erelu")(x)
  x = keras.layers.DepthwiseConv2D(3, stride, padding="same", use_bias=False,
                                   name=f"{name}_d")(x)
  x = keras.layers.BatchNormalization(name=f"{name}_dbn")(x)
  x = keras.layers.ReLU(6.0, name=f"{name}_drelu")(x)
  if se:
    s = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    x = keras.layers.Multiply(name=f"{name}_se")([x, s])
  x = keras.layers.Conv2D(out, 1, use_bias=False, name=f"{name}_p")(x)
  x = keras.layers.BatchNormalization(name=f"{name}_pbn")(x)
  if stride == 1 and cin == out:
    x = keras.layers.Add(name=f"{name}_add")([inputs, x])
  return x


def mbconv_model(resolution=16, se=False):
  inp = keras.Input((resolution, resolution, 3))
  x = keras.layers.Conv2D(8, 3, 2, padding="same", use_bias=False)(inp)
  x = keras.layers.BatchNormalization()(x)
  x = keras.layers.ReLU(6.0)(x)
  x = _block(x, 8, 1, 1, "a")
  x = _block(x, 16, 2, 3, "b")
  x = _block(x, 16, 1, 3, "c", se=se)
  x = keras.layers.GlobalAveragePooling2D()(x)
  model = keras.Model(inp, keras.layers.Dense(4, name="fc")(x))
  rng = np.random.RandomState(0)
  for l in model.layers:
    if isinstance(l, keras.layers.BatchNormalization):
      l.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in l.get_weights()])
  return model


X = np.random.RandomState(1).rand(2, 16, 16, 3).astype(np.float32)


@pytest.mark.parametrize("norm", ["group", "batch"])
def test_fresh_branches_keep_outputs_and_use_the_lowerable_layer_kinds(norm):
  model = mbconv_model()
  lite = rewrite.insert_lite_residual(model, norm=norm)
  np.testing.assert_allclose(lite(X).numpy(), model(X).numpy(), atol=1e-6)
  branch = lite_residual.lite_residual_layers(lite)
  names = sorted(l.name for l in branch)
  # Blocks b and c have an expansion conv; block a (no expansion) is skipped.
  assert {n.split("_lite_")[0] for n in names} == {"b_d", "c_d"}
  conv = WSConv2D if norm == "group" else layers.Conv2D
  norm_cls = (keras.layers.GroupNormalization if norm == "group"
              else layers.BatchNormalization)
  b = {l.name.split("_lite_")[1]: l for l in branch if l.name.startswith("b_d")}
  assert isinstance(b["pool"], keras.layers.AveragePooling2D)
  assert type(b["conv1"]) is conv and b["conv1"].groups == 2
  assert b["conv1"].strides == (2, 2) and not b["conv1"].use_bias
  assert type(b["norm1"]) is norm_cls and type(b["norm2"]) is norm_cls
  assert isinstance(b["relu"], keras.layers.ReLU)
  assert b["conv2"].kernel_size == (1, 1)
  assert not np.any(b["norm2"].gamma.numpy())
  assert isinstance(b["upsample"], keras.layers.UpSampling2D)
  assert b["upsample"].interpolation == "bilinear"
  assert isinstance(b["add"], keras.layers.Add)
  # Width = in_channels (8) rounded to a multiple of 8.
  assert b["conv1"].filters == 8


def test_kernel_shrinks_with_resolution_and_global_pool_at_1x1():
  assert [lite_residual.branch_kernel_size(r) for r in (56, 5, 4, 3, 2, 1)] == [
      5, 5, 3, 3, 1, 1]
  lite = rewrite.insert_lite_residual(mbconv_model(resolution=4))
  pools = [l for l in lite.layers if l.name.endswith("_lite_pool")]
  assert all(isinstance(p, keras.layers.GlobalAveragePooling2D) for p in pools)
  convs = [l for l in lite.layers if l.name.endswith("_lite_conv1")]
  assert all(c.kernel_size == (1, 1) for c in convs)


def test_non_integer_upsampling_uses_resizing():
  # A 7x7 block: pooled 3x3 (kernel 3), stride 1 -> 3x3, main output 7x7.
  inp = keras.Input((7, 7, 8))
  model = keras.Model(inp, _block(inp, 8, 1, 2, "z"))
  lite = rewrite.insert_lite_residual(model)
  up = lite.get_layer("z_d_lite_upsample")
  assert isinstance(up, keras.layers.Resizing)
  assert lite.get_layer("z_d_lite_conv1").kernel_size == (3, 3)
  x = np.random.RandomState(3).rand(1, 7, 7, 8).astype(np.float32)
  np.testing.assert_allclose(lite(x).numpy(), model(x).numpy(), atol=1e-6)


def test_original_untouched_and_branches_trainable_after_freeze():
  model = rewrite.freeze(mbconv_model())
  n_layers = len(model.layers)
  lite = rewrite.insert_lite_residual(model)
  assert len(model.layers) == n_layers
  trainable_layers = {w.name.split("/")[0] for w in lite.trainable_weights}
  assert trainable_layers == {
      l.name for l in lite_residual.lite_residual_layers(lite) if l.weights}


def test_save_load_round_trip(tmp_path):
  lite = rewrite.insert_lite_residual(mbconv_model())
  lite.get_layer("b_d_lite_norm2").gamma.assign(np.ones(16, np.float32))
  path = str(tmp_path / "lite.keras")
  lite.save(path)
  loaded = keras.models.load_model(path)
  np.testing.assert_allclose(loaded(X).numpy(), lite(X).numpy(), atol=1e-6)
  clone = keras.Model.from_config(lite.get_config())
  assert [type(l) for l in clone.layers] == [type(l) for l in lite.layers]


def test_squeeze_excitation_block_gets_a_branch():
  model = mbconv_model(se=True)
  lite = rewrite.insert_lite_residual(model)
  names = {l.name.split("_lite_")[0] for l in
           rewrite.lite_residual_layers(lite)}
  assert names == {"b_d", "c_d"}
  np.testing.assert_allclose(lite(X).numpy(), model(X).numpy(), atol=1e-6)


def test_unsupported_block_names_the_layer():
  inp = keras.Input((8, 8, 8))
  x = keras.layers.DepthwiseConv2D(3, padding="same", name="t_d")(inp)
  x = keras.layers.Activation("tanh")(x)
  x = keras.layers.Conv2D(8, 1)(x)
  model = keras.Model(inp, keras.layers.Dense(2)(
      keras.layers.GlobalAveragePooling2D()(x)))
  with pytest.raises(rewrite.UnsupportedModelError,
                     match="DepthwiseConv2D 't_d'.*Supported block"):
    rewrite.insert_lite_residual(model)


def test_second_insertion_and_bad_options_are_rejected():
  lite = rewrite.insert_lite_residual(mbconv_model())
  with pytest.raises(rewrite.UnsupportedModelError, match="already has"):
    rewrite.insert_lite_residual(lite)
  with pytest.raises(ValueError, match="norm must be one of"):
    rewrite.insert_lite_residual(mbconv_model(), norm="layer")


def test_keras_applications_mobilenet_v2_with_zero_padding():
  model = keras.applications.MobileNetV2(
      input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=5)
  blocks = rewrite.find_mbconv_blocks(model)
  assert len(blocks) == 17
  assert sum(b.stride == 2 for b in blocks) == 4
  assert sum(b.has_shortcut for b in blocks) == 10
  assert blocks[0].expand is None and all(b.expand for b in blocks[1:])
  lite = rewrite.insert_lite_residual(model)
  x = np.random.RandomState(4).rand(1, 32, 32, 3).astype(np.float32)
  np.testing.assert_allclose(lite(x).numpy(), model(x).numpy(), atol=1e-5)
  adds = [l for l in lite.layers if l.name.endswith("_lite_add")]
  assert len(adds) == 16
