"""TinyTL accounting of the layers of MobileNetV3, EfficientNet and plain
CNNs: h-swish and sigmoid/swish keep their full tensor, ReLU, hard-sigmoid
and max pooling a 1-bit mask, squeeze-and-excitation's Multiply both
operands when both need a gradient, preprocessing nothing."""
from own_model_builders import efficientnet_mini
from own_model_builders import mobilenet_v3_mini
from tflite_tl import layers
from tflite_tl import memory
from tflite_tl import rewrite
from tflite_tl._compat import keras
from tflite_tl.memory import report


def _saved(r, layer):
  return [x for x in r.layer(layer).records if x.role == report.SAVED]


def _of_class(model, cls):
  return [l for l in model.layers if type(l) is cls]


def test_mobilenet_v3_bias_training_records():
  model = rewrite.apply_method(mobilenet_v3_mini(), "tinytl_b")
  r = memory.training_memory(model, batch_size=1)
  kinds = {l.kind for l in r.breakdown}
  assert "other" not in kinds, kinds
  for hs in _of_class(model, layers.HardSwish):
    (saved,) = _saved(r, hs.name)
    assert saved.bits == 32 and "full input" in saved.why
    assert saved.shape == tuple(hs.input.shape[1:])
  for hsig in _of_class(model, layers.HardSigmoid):
    (saved,) = _saved(r, hsig.name)
    assert saved.bits == 1
  for mul in _of_class(model, keras.layers.Multiply):
    saved = _saved(r, mul.name)
    # Both the feature map and the gate need a gradient: both are kept.
    assert [s.shape for s in saved] == [tuple(t.shape[1:]) for t in mul.input]
  rescaling = _of_class(model, keras.layers.Rescaling)[0]
  assert not _saved(r, rescaling.name)


def test_frozen_backbone_keeps_nothing_in_its_activations():
  model = rewrite.apply_method(mobilenet_v3_mini(), "ft_last")
  r = memory.training_memory(model, batch_size=1)
  kept = [x for x in r.records if x.role == report.SAVED]
  assert [x.layer for x in kept] == ["Logits"]  # the classifier's input


def test_efficientnet_fused_swish_and_sigmoid_keep_full_tensors():
  model = rewrite.apply_method(efficientnet_mini(), "tinytl_b")
  r = memory.training_memory(model, batch_size=1)
  se_convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)
              and keras.activations.serialize(l.activation) in ("swish",
                                                                "sigmoid")]
  assert se_convs
  for conv in se_convs:
    (saved,) = _saved(r, conv.name)
    assert saved.bits == 32 and saved.tensor.endswith(":activation")
  swish = [l for l in model.layers if isinstance(l, keras.layers.Activation)
           and keras.activations.serialize(l.activation) == "swish"]
  assert all(_saved(r, l.name)[0].bits == 32 for l in swish)
  norm = _of_class(model, keras.layers.Normalization)[0]
  assert r.layer(norm.name).kind == "reshape" and not _saved(r, norm.name)


def test_max_pool_keeps_a_one_bit_mask_when_a_gradient_passes():
  inputs = keras.Input((8, 8, 2))
  x = keras.layers.Conv2D(4, 3, padding="same", name="c")(inputs)
  x = keras.layers.MaxPooling2D(name="pool")(x)
  x = keras.layers.Flatten()(x)
  model = keras.Model(inputs, keras.layers.Dense(3, name="fc")(x))
  r = memory.training_memory(rewrite.apply_method(model, "tinytl_b"))
  (mask,) = _saved(r, "pool")
  assert mask.bits == 1 and mask.bytes == 8 * 8 * 4 / 8
  r = memory.training_memory(rewrite.apply_method(model, "ft_last"))
  assert not _saved(r, "pool")
