import pytest

from tflite_tl._compat import keras
from tflite_tl import layers
from tflite_tl import rewrite


def _block_model(expand=True, fused_bn=False, with_add=True):
  inp = keras.Input((8, 8, 8))
  x = inp
  if expand:
    x = keras.layers.Conv2D(16, 1, use_bias=fused_bn, name="exp")(x)
    if not fused_bn:
      x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu6")(x)
  x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=fused_bn,
                                   name="dw")(x)
  if not fused_bn:
    x = keras.layers.BatchNormalization()(x)
  x = keras.layers.ReLU()(x)
  x = keras.layers.Conv2D(8, 1, use_bias=fused_bn, name="proj")(x)
  if not fused_bn:
    x = keras.layers.BatchNormalization(name="proj_bn")(x)
  if with_add:
    x = keras.layers.Add(name="add")([inp, x])
  return keras.Model(inp, x)


@pytest.mark.parametrize("fused_bn", [False, True])
def test_finds_block_parts_by_structure(fused_bn):
  model = _block_model(fused_bn=fused_bn)
  (block,) = rewrite.find_mbconv_blocks(model)
  assert block.depthwise.name == "dw" and block.project.name == "proj"
  assert block.expand.name == "exp"
  assert block.input is model.inputs[0] and block.has_shortcut
  assert block.output is model.outputs[0]
  assert block.stride == 1 and block.input_shape == (8, 8, 8)


def test_block_without_expansion_or_shortcut():
  model = _block_model(expand=False, with_add=False)
  (block,) = rewrite.find_mbconv_blocks(model)
  assert block.expand is None and not block.has_shortcut
  assert block.output is model.get_layer("proj_bn").output


def test_found_in_folded_zoo_style_model_after_fold_batch_norm():
  folded = rewrite.fold_batch_norm(_block_model())
  (block,) = rewrite.find_mbconv_blocks(folded)
  assert block.has_shortcut and block.expand.name == "exp"


def test_depthwise_without_projection_is_named_in_the_error():
  inp = keras.Input((8, 8, 4))
  x = keras.layers.DepthwiseConv2D(3, name="lonely_dw")(inp)
  x = keras.layers.ReLU()(x)
  model = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(x))
  with pytest.raises(rewrite.UnsupportedModelError,
                     match="'lonely_dw'.*1x1 projection Conv2D"):
    rewrite.find_mbconv_blocks(model)


def test_tanh_block_is_rejected():
  inp = keras.Input((8, 8, 4))
  x = keras.layers.DepthwiseConv2D(3, padding="same", name="th_dw")(inp)
  x = keras.layers.Activation("tanh")(x)
  x = keras.layers.Conv2D(4, 1)(x)
  with pytest.raises(rewrite.UnsupportedModelError,
                     match="'th_dw'.*ReLU/ReLU6/HardSwish/swish"):
    rewrite.find_mbconv_blocks(keras.Model(inp, x))


def _se_block_model(activation):
  """EfficientNet/MobileNetV3-style block: act, squeeze-excite, drop-connect."""
  inp = keras.Input((8, 8, 8))
  x = keras.layers.Conv2D(16, 1, use_bias=False, name="exp")(inp)
  x = keras.layers.BatchNormalization()(x)
  x = activation()(x)
  x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False,
                                   name="dw")(x)
  x = keras.layers.BatchNormalization()(x)
  x = activation()(x)
  se = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
  se = keras.layers.Conv2D(4, 1, activation="relu")(se)
  se = keras.layers.Conv2D(16, 1, activation="sigmoid")(se)
  x = keras.layers.Multiply(name="excite")([x, se])
  x = keras.layers.Conv2D(8, 1, use_bias=False, name="proj")(x)
  x = keras.layers.BatchNormalization()(x)
  x = keras.layers.Dropout(0.2, noise_shape=(None, 1, 1, 1))(x)
  x = keras.layers.Add(name="add")([x, inp])
  return keras.Model(inp, x)


@pytest.mark.parametrize("activation", [
    lambda: keras.layers.Activation("swish"), layers.HardSwish,
    lambda: keras.layers.ReLU(6.0)], ids=["swish", "hard_swish", "relu6"])
def test_squeeze_excitation_and_drop_connect_blocks(activation):
  model = _se_block_model(activation)
  (block,) = rewrite.find_mbconv_blocks(model)
  assert (block.expand.name, block.depthwise.name, block.project.name) == (
      "exp", "dw", "proj")
  assert block.has_shortcut and block.output is model.outputs[0]


def test_model_without_depthwise_convs_is_rejected():
  inp = keras.Input((8, 8, 4))
  model = keras.Model(inp, keras.layers.Conv2D(4, 3)(inp), name="plain")
  with pytest.raises(rewrite.UnsupportedModelError,
                     match="'plain' has no DepthwiseConv2D"):
    rewrite.find_mbconv_blocks(model)
