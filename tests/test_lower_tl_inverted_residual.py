"""Where the int8 kernel flavor fuses inverted-residual blocks into
TL_INVERTED_RESIDUAL, and that the fused graphs compute the TF reference's
int8 values in TFLM, also where the train step's backward crosses a fused
block (its masks come from the op; the train step stays exact and its arena
shrinks), and where a stem conv becomes the expand of a block without one."""
import dataclasses

import numpy as np
import pytest
from tensorflow.lite.python import schema_py_generated as schema

import tflite_tl as tl
from tflite_tl._compat import keras
from tflite_tl.flatbuffer import edit
from tflite_tl.lower import lower_model
from tflite_tl.lower.builtins import op_counts
from tflite_tl.lower.tl import graphs
from tflite_tl.lower.tl import inverted_residual
from tflite_tl.lower.tl import quantization as quant
from tflite_tl.lower.tl.model_graph import ModelGraph
from tflite_tl.lower.tl.reference import QuantizedTrainStep
from tflite_tl.lower.tl.rule_base import Policy
from tflite_tl.tflm import measure_arena
from tflite_tl.tflm import run_model
from tflite_tl.tflm import run_train_steps
from tflite_tl.verify import train_step as ts

_OP = "CUSTOM:TL_INVERTED_RESIDUAL"
_GRAD_OP = inverted_residual.GRAD_OP


def _conv_bn_relu(x, filters, kernel, stride, name, relu=True):
  x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same",
                          use_bias=True, name=name)(x)
  return keras.layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def _block(x, out_c, expansion, stride, name, residual=False):
  inputs = x
  in_c = int(x.shape[-1])
  if expansion != 1:
    x = _conv_bn_relu(x, in_c * expansion, 1, 1, f"{name}_expand")
  x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same",
                                   name=f"{name}_dw")(x)
  x = keras.layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
  x = _conv_bn_relu(x, out_c, 1, 1, f"{name}_project", relu=False)
  if residual:
    x = keras.layers.Add(name=f"{name}_add")([inputs, x])
  return x


def _model(seed=0):
  keras.utils.set_random_seed(seed)
  inputs = keras.Input((16, 16, 1))
  x = _conv_bn_relu(inputs, 8, 3, 2, "stem")
  x = _block(x, 8, 1, 1, "b1")                 # no expand
  x = _block(x, 8, 3, 2, "b2")                 # expand, stride 2
  x = _block(x, 8, 3, 1, "b3", residual=True)  # expand, residual Add
  x = keras.layers.GlobalAveragePooling2D()(x)
  outputs = keras.layers.Dense(4, name="head")(x)
  model = keras.Model(inputs, outputs)
  # Non-trivial biases: random values instead of zeros.
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    if getattr(layer, "bias", None) is not None:
      layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape))
  return model


def _trainable(model, names):
  for layer in model.layers:
    layer.trainable = layer.name in names
  return model


def _images(n, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.integers(0, 256, (n, 16, 16, 1)) / 255.0).astype(np.float32)


def _policy(model, x, **kw):
  return Policy(precision="int8", quantization=quant.ranges_to_quantization(
      quant.calibrate(model, x)), **kw)


def _fused(model, policy, training):
  p = dataclasses.replace(policy, training=training)
  blocks = inverted_residual.find_blocks(ModelGraph(model, 1), p)
  return sorted(b.depthwise.name.split("_")[0] for b in blocks.values())


def test_head_only_training_fuses_every_block():
  model = _trainable(_model(), {"head"})
  policy = _policy(model, _images(4))
  assert _fused(model, policy, training=True) == ["b1", "b2", "b3"]
  ops = op_counts(graphs.train_graph(model, batch_size=2,
                                     policy=policy).tflite)
  # The stem is b1's expand: no builtin conv is left.
  assert ops[_OP] == 3 and "DEPTHWISE_CONV_2D" not in ops
  assert "CONV_2D" not in ops and ops["ADD"] == 1  # b3's residual
  ops = op_counts(graphs.predict_graph(model, policy=policy).tflite)
  assert ops[_OP] == 3 and "DEPTHWISE_CONV_2D" not in ops
  assert "CONV_2D" not in ops


def _expands(model, policy, training=True):
  p = dataclasses.replace(policy, training=training)
  blocks = inverted_residual.find_blocks(ModelGraph(model, 1), p)
  return {b.depthwise.name.split("_")[0]: b.expand.name if b.expand else None
          for b in blocks.values()}


def test_a_stem_conv_is_the_expand_of_a_block_without_one():
  model = _trainable(_model(), {"head"})
  policy = _policy(model, _images(4))
  assert _expands(model, policy) == {"b1": "stem", "b2": "b2_expand",
                                     "b3": "b3_expand"}
  g = graphs.predict_graph(model, policy=policy)
  (ins, outs), = [t for t in _op_tensors(g.tflite, "TL_INVERTED_RESIDUAL")
                  if t[1][0] == "b1_project"]
  # The fused op reads the int8 image and the stem's 3x3 filter directly.
  assert ins[:3] == ["images", "stem/kernel", "stem/bias:int32"]
  assert outs == ["b1_project"]
  options = _custom_options(g.tflite, "b1_project")
  assert (options["expand_stride_h"], options["expand_stride_w"],
          options["expand_padding"]) == (2, 2, 1)
  assert (options["stride_h"], options["padding"]) == (1, 1)


def test_a_trained_stem_is_not_an_expand():
  model = _trainable(_model(), {"head", "stem"})
  policy = _policy(model, _images(4))
  # b1 still fuses, from its depthwise, as a block the backward crosses.
  assert _expands(model, policy) == {"b1": None, "b2": "b2_expand",
                                     "b3": "b3_expand"}
  assert _crossed(model, policy) == ["b1", "b2", "b3"]


def _custom_options(tflite: bytes, output_name):
  """The flexbuffer options of the op that writes ``output_name``."""
  from flatbuffers import flexbuffers  # pylint: disable=import-outside-toplevel
  model = edit.unpack(tflite)
  sg = model.subgraphs[0]
  names = [t.name.decode() if isinstance(t.name, bytes) else t.name
           for t in sg.tensors]
  op, = [o for o in sg.operators if names[o.outputs[0]] == output_name]
  return flexbuffers.Loads(bytes(op.customOptions))


def _crossed(model, policy):
  blocks = inverted_residual.find_blocks(ModelGraph(model, 1), policy)
  return sorted(b.depthwise.name.split("_")[0] for b in blocks.values()
                if b.crossed)


def test_train_step_fuses_every_frozen_block_crossed_or_not():
  model = _trainable(_model(), {"head", "b2_dw"})
  policy = _policy(model, _images(4))
  # b2 trains; b3 is frozen but the gradient flows through it to b2.
  assert _fused(model, policy, training=True) == ["b1", "b3"]
  assert _crossed(model, policy) == ["b3"]
  # The predict graph fuses every block none of whose weights trains.
  assert _fused(model, policy, training=False) == ["b1", "b3"]
  assert not _crossed(model, dataclasses.replace(policy, training=False))
  ops = op_counts(graphs.train_graph(model, batch_size=1,
                                     policy=policy).tflite)
  assert ops[_OP] == 2


def test_float_lowering_fuses_nothing():
  model = _trainable(_model(), {"head"})
  g = ModelGraph(model, 1)
  assert not inverted_residual.find_blocks(g, Policy(precision="float"))
  ops = op_counts(graphs.predict_graph(model, policy=Policy()).tflite)
  assert _OP not in ops


def test_blocks_with_a_shared_interior_or_nonlinear_project_are_not_fused():
  keras.utils.set_random_seed(0)
  inputs = keras.Input((8, 8, 4))
  e = _conv_bn_relu(inputs, 8, 1, 1, "e")
  d = keras.layers.DepthwiseConv2D(3, padding="same", name="d")(e)
  p = keras.layers.Conv2D(4, 1, name="p")(d)
  # The expanded map is also read by another layer: no expand in the block.
  side = keras.layers.Conv2D(4, 1, name="side")(e)
  y = keras.layers.Add()([p, side])
  d2 = keras.layers.DepthwiseConv2D(3, padding="same", name="d2")(y)
  # A project with its own ReLU is not linear: not a block.
  p2 = keras.layers.Conv2D(4, 1, activation="relu", name="p2")(d2)
  y = keras.layers.GlobalAveragePooling2D()(p2)
  model = _trainable(keras.Model(inputs, keras.layers.Dense(2, name="head")(y)),
                     {"head"})
  x = np.random.default_rng(0).random((4, 8, 8, 4)).astype(np.float32)
  blocks = inverted_residual.find_blocks(ModelGraph(model, 1),
                                         _policy(model, x))
  assert [(b.expand, b.depthwise.name, b.project.name)
          for b in blocks.values()] == [(None, "d", "p")]


def _separable_chain():
  # depthwise -> linear 1x1 -> depthwise -> linear 1x1: the first 1x1 is the
  # first block's project, so the second block has no expand conv.
  keras.utils.set_random_seed(1)
  inputs = keras.Input((8, 8, 4))
  x = keras.layers.DepthwiseConv2D(3, padding="same", name="d1")(inputs)
  x = keras.layers.Conv2D(6, 1, name="p1")(x)
  x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="d2")(x)
  x = keras.layers.Conv2D(4, 1, name="p2")(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  return _trainable(keras.Model(inputs, keras.layers.Dense(2, name="head")(x)),
                    {"head"})


def test_a_project_is_not_also_the_next_blocks_expand():
  model = _separable_chain()
  x = np.random.default_rng(0).random((4, 8, 8, 4)).astype(np.float32)
  blocks = inverted_residual.find_blocks(ModelGraph(model, 1), _policy(model, x))
  assert [(b.expand, b.depthwise.name, b.project.name)
          for b in blocks.values()] == [(None, "d1", "p1"), (None, "d2", "p2")]


def test_separable_chain_predict_matches_the_reference(tflm_root):
  del tflm_root
  model = _separable_chain()
  x = np.random.default_rng(0).random((4, 8, 8, 4)).astype(np.float32)
  policy = _policy(model, x, params_as_variables=False)
  g = graphs.predict_graph(model, policy=policy)
  assert op_counts(g.tflite)[_OP] == 2
  outs = run_model(g.tflite, [[quant.quantize_image(x[i:i + 1])]
                              for i in range(len(x))])
  got = np.concatenate([step[0] for step in outs.outputs])
  ref = QuantizedTrainStep(model, batch_size=1, policy=policy)
  want = np.concatenate([ref.predict(x[i:i + 1]).numpy()
                         for i in range(len(x))])
  # The int8 blocks are exact; the trained float head adds float rounding.
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_fused_predict_is_bit_exact_with_the_reference(tflm_root):
  del tflm_root
  model = _trainable(_model(), {"head"})
  x = _images(6)
  policy = _policy(model, x, params_as_variables=False)
  g = graphs.predict_graph(model, policy=policy)
  assert op_counts(g.tflite)[_OP] == 3
  outs = run_model(g.tflite, [[quant.quantize_image(x[i:i + 1])]
                              for i in range(len(x))])
  got = np.concatenate([step[0] for step in outs.outputs])
  ref = QuantizedTrainStep(model, batch_size=1, policy=policy)
  want = np.concatenate([ref.predict(x[i:i + 1]).numpy()
                         for i in range(len(x))])
  np.testing.assert_array_equal(got, want)
  assert len(np.unique(got)) > 4


def _stem_model(padding, size, seed=2):
  """A 3x3 stride-2 conv + ReLU6 (MobileNetV2's stem) in front of a block
  without an expand conv, then one with."""
  keras.utils.set_random_seed(seed)
  inputs = keras.Input((size, size, 1))
  x = keras.layers.Conv2D(8, 3, strides=2, padding=padding, name="stem")(inputs)
  x = keras.layers.ReLU(6.0, name="stem_relu")(x)
  x = _block(x, 8, 1, 1, "b1")
  x = _block(x, 8, 3, 2, "b2")
  x = keras.layers.GlobalAveragePooling2D()(x)
  model = keras.Model(inputs, keras.layers.Dense(4, name="head")(x))
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    if getattr(layer, "bias", None) is not None:
      layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape))
  return _trainable(model, {"head"})


def _without_conv_expands(monkeypatch, build):
  """``build()`` with every block's expand a 1x1 stride-1 conv or none (the
  lowering before a wider conv could be an expand: the stem a CONV_2D)."""
  find = inverted_residual.find_blocks

  def pointwise_only(graph, policy):
    blocks = {}
    for k, b in find(graph, policy).items():
      if b.expand is not None and not inverted_residual._is_pointwise(  # pylint: disable=protected-access
          b.expand):
        members = b.members - set(inverted_residual._members(graph, b.expand))  # pylint: disable=protected-access
        b = dataclasses.replace(b, expand=None, members=frozenset(members))
      blocks[k] = b
    return blocks

  with monkeypatch.context() as m:
    m.setattr(inverted_residual, "find_blocks", pointwise_only)
    return build()


@pytest.mark.parametrize("padding,size", [("same", 16), ("valid", 17)])
def test_fused_stem_is_bit_identical_to_the_unfused_graph(
    native_runner, monkeypatch, padding, size):
  del native_runner
  model = _stem_model(padding, size)
  x = _images_like(model, 4)
  policy = _policy(model, x, params_as_variables=False)
  assert _expands(model, policy, training=False) == {"b1": "stem",
                                                     "b2": "b2_expand"}
  fused = graphs.predict_graph(model, policy=policy).tflite
  unfused = _without_conv_expands(
      monkeypatch, lambda: graphs.predict_graph(model, policy=policy).tflite)
  # (An int8 graph's convs outside blocks run on TL_CONV.)
  assert "CONV_2D" not in op_counts(fused)
  assert "CUSTOM:TL_CONV" not in op_counts(fused)
  assert (op_counts(unfused)["CUSTOM:TL_CONV"] == 1
          and op_counts(unfused)[_OP] == 2)
  steps = [[quant.quantize_image(x[i:i + 1])] for i in range(len(x))]
  got = np.concatenate([s[0] for s in run_model(fused, steps).outputs])
  want = np.concatenate([s[0] for s in run_model(unfused, steps).outputs])
  np.testing.assert_array_equal(got, want)
  ref = QuantizedTrainStep(model, batch_size=1, policy=policy)
  np.testing.assert_allclose(
      got, np.concatenate([ref.predict(x[i:i + 1]).numpy()
                           for i in range(len(x))]), rtol=1e-5, atol=1e-6)
  # The stem's output map is no arena tensor any more (in this small model
  # b2 sets the head's peak), nor its CONV_2D's per-channel persistent data.
  before, after = measure_arena(unfused), measure_arena(fused)
  print(f"stem fused ({padding}, {size} px): predict arena head "
        f"{before.head} -> {after.head}, total {before.total} -> "
        f"{after.total}")
  assert after.head <= before.head and after.total < before.total


def _below_stem_model():
  # A trained conv below the stem: the backward crosses the stem and b1.
  keras.utils.set_random_seed(3)
  inputs = keras.Input((16, 16, 1))
  x = keras.layers.Conv2D(2, 1, name="pre")(inputs)
  x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="stem")(x)
  x = keras.layers.ReLU(6.0, name="stem_relu")(x)
  x = _block(x, 8, 1, 1, "b1")
  x = keras.layers.GlobalAveragePooling2D()(x)
  model = keras.Model(inputs, keras.layers.Dense(4, name="head")(x))
  return _trainable(model, {"head", "pre"})


def test_a_crossed_block_takes_no_stem_as_its_expand():
  model = _below_stem_model()
  x = _images(4)
  policy = _policy(model, x, learning_rate=0.05)
  # The train step's backward crosses b1 and the stem: b1 fuses from its
  # depthwise (TL_INVERTED_RESIDUAL_INPUT_GRAD knows 1x1 expands only) and
  # the stem stays a conv of its own (the train step's TL_CONV); the predict
  # graph fuses the stem.
  assert _expands(model, policy) == {"b1": None}
  assert _crossed(model, policy) == ["b1"]
  assert _expands(model, policy, training=False) == {"b1": "stem"}
  train = graphs.train_graph(model, batch_size=2, policy=policy).tflite
  ops = op_counts(train)
  assert ops[_OP] == 1 and ops[f"CUSTOM:{_GRAD_OP}"] == 1
  assert [o for _, o in _op_tensors(train, "TL_CONV") if o[0] == "stem"]


def test_crossed_stem_train_steps_match_the_reference(tflm_root):
  del tflm_root
  model = _below_stem_model()
  x = _images(8)
  policy = _policy(model, x, learning_rate=0.05)
  g = graphs.train_graph(model, batch_size=2, policy=policy)
  labels = np.array([0, 1, 2, 3, 0, 1, 2, 3], np.int32)
  run = run_train_steps(g.tflite, [(x[i:i + 2], labels[i:i + 2])
                                   for i in range(0, 8, 2)])
  ref = QuantizedTrainStep(model, batch_size=2, policy=policy)
  want = [float(ref.train_step(x[i:i + 2], labels[i:i + 2])["loss"])
          for i in range(0, 8, 2)]
  np.testing.assert_allclose(np.asarray(run.losses).reshape(-1), want,
                             rtol=1e-5)


@pytest.mark.parametrize("trained", [("head",), ("head", "b3_project")])
def test_fused_train_steps_match_the_reference(tflm_root, trained):
  del tflm_root
  model = _trainable(_model(), set(trained))
  x = _images(8)
  policy = _policy(model, x, learning_rate=0.05)
  g = graphs.train_graph(model, batch_size=2, policy=policy)
  assert op_counts(g.tflite)[_OP] == (3 if trained == ("head",) else 2)
  labels = np.array([0, 1, 2, 3, 0, 1, 2, 3], np.int32)
  run = run_train_steps(g.tflite, [(x[i:i + 2], labels[i:i + 2])
                                   for i in range(0, 8, 2)])
  ref = QuantizedTrainStep(model, batch_size=2, policy=policy)
  want = [float(ref.train_step(x[i:i + 2], labels[i:i + 2])["loss"])
          for i in range(0, 8, 2)]
  np.testing.assert_allclose(np.asarray(run.losses).reshape(-1), want,
                             rtol=1e-5)


@pytest.mark.slow
def test_mobilenet_v2_backbone_fuses_every_block_bit_exact(tflm_root):
  del tflm_root
  model = tl.apply_method(tl.load_pretrained("mobilenet_v2"), "ft_last",
                          num_classes=10)
  gap = [l for l in model.layers
         if isinstance(l, keras.layers.GlobalAveragePooling2D)][0]
  # Up to the pooled int8 features (the float head's logits would differ in
  # float rounding only).
  backbone = keras.Model(model.inputs, gap.output)
  x = _images_like(backbone, 4)
  policy = _policy(backbone, x, params_as_variables=False)
  g = graphs.predict_graph(backbone, policy=policy)
  ops = op_counts(g.tflite)
  assert ops[_OP] == 17 and "DEPTHWISE_CONV_2D" not in ops
  # head_conv (on TL_CONV): the stem is block1's expand.
  assert ops["CUSTOM:TL_CONV"] == 1 and "CONV_2D" not in ops
  outs = run_model(g.tflite, [[quant.quantize_image(x[i:i + 1])]
                              for i in range(len(x))])
  got = np.concatenate([step[0] for step in outs.outputs])
  ref = QuantizedTrainStep(backbone, batch_size=1, policy=policy)
  want = np.concatenate([ref.predict(x[i:i + 1]).numpy()
                         for i in range(len(x))])
  np.testing.assert_array_equal(got, want)


def _images_like(model, n, seed=0):
  rng = np.random.default_rng(seed)
  shape = tuple(int(d) for d in model.inputs[0].shape[1:])
  return (rng.integers(0, 256, (n,) + shape) / 255.0).astype(np.float32)


# --- blocks the backward crosses ---------------------------------------------

_CROSSING = ("head", "b1_project")  # b2, b3: frozen above a trained layer
_STEPS, _BATCH = 20, 2


def _crossing_lowered(batches):
  model = _trainable(_model(), set(_CROSSING))
  return lower_model(model, batch_size=_BATCH, learning_rate=0.05,
                     kernels="tl", precision="int8",
                     calibration_images=np.concatenate(
                         [x for x, _ in batches]))


def _unfused_crossing(monkeypatch, batches):
  """The same train step with the crossed blocks as builtins + TL_RELU_MASK
  (what the lowering emitted before they fused)."""
  find = inverted_residual.find_blocks
  with monkeypatch.context() as m:
    m.setattr(inverted_residual, "find_blocks", lambda graph, policy: {
        k: b for k, b in find(graph, policy).items() if not b.crossed})
    return _crossing_lowered(batches)


@pytest.fixture(scope="module")
def crossing_batches():
  return ts.random_batches(3, _STEPS, _BATCH, (16, 16, 1), 4)


def _op_tensors(tflite: bytes, op):
  """[(input names, output names)] of every op of subgraph 0 that is the
  custom op named ``op`` or the builtin ``op`` (a BuiltinOperator code)."""
  model = edit.unpack(tflite)
  sg = model.subgraphs[0]
  names = [t.name.decode() if isinstance(t.name, bytes) else t.name
           for t in sg.tensors]

  def kind(o):
    code = model.operatorCodes[o.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == schema.BuiltinOperator.CUSTOM:
      custom = code.customCode
      return custom.decode() if isinstance(custom, bytes) else custom
    return builtin

  return [([names[i] if i >= 0 else None for i in o.inputs],
           [names[i] for i in o.outputs])
          for o in sg.operators if kind(o) == op]


def test_crossed_blocks_fuse_with_their_mask_outputs(crossing_batches):
  lowered = _crossing_lowered(crossing_batches)
  ops = op_counts(lowered.train_tflite)
  # b2 and b3 fused; b1 (its project trains) is not a frozen block.
  assert ops[_OP] == 2
  fused = _op_tensors(lowered.train_tflite, "TL_INVERTED_RESIDUAL")
  outputs = sorted(tuple(o) for _, o in fused)
  assert outputs == [("b2_project", "b2_expand/mask", "b2_dw/mask"),
                     ("b3_project", "b3_expand/mask", "b3_dw/mask")]
  # No layer of b2 or b3 is a builtin conv or a TL_RELU_MASK any more.
  for op in (schema.BuiltinOperator.CONV_2D,
             schema.BuiltinOperator.DEPTHWISE_CONV_2D, "TL_CONV",
             "TL_DEPTHWISE_CONV", "TL_RELU_MASK"):
    for ins, outs in _op_tensors(lowered.train_tflite, op):
      assert not any(n.startswith(("b2_", "b3_")) for n in outs), (op, outs)
  # Their backward: one TL_INVERTED_RESIDUAL_INPUT_GRAD each, reading the
  # fused op's masks (no downstream mask: b2 feeds b3 and its residual Add,
  # b3 the pooling), and none of the unfused chain's ops.
  grads = {outs[0]: ins for ins, outs in
           _op_tensors(lowered.train_tflite, _GRAD_OP)}
  assert sorted(grads) == ["b2_expand/grad_input", "b3_expand/grad_input"]
  for b in ("b2", "b3"):
    assert grads[f"{b}_expand/grad_input"] == [
        grads[f"{b}_expand/grad_input"][0], None, f"{b}_project/kernel",
        f"{b}_dw/depthwise_kernel", f"{b}_dw/mask", f"{b}_expand/kernel",
        f"{b}_expand/mask"]
  for op in ("TL_CONV_INPUT_GRAD", "TL_DEPTHWISE_INPUT_GRAD"):
    for ins, outs in _op_tensors(lowered.train_tflite, op):
      assert not any(n.startswith(("b2_", "b3_")) for n in outs), (op, outs)


def _chain_crossing(monkeypatch, batches):
  """The same train step with the crossed blocks' backward as the three-op
  chain TL_CONV_INPUT_GRAD -> TL_DEPTHWISE_INPUT_GRAD -> TL_CONV_INPUT_GRAD."""
  with monkeypatch.context() as m:
    m.setattr(inverted_residual, "_FUSED_BACKWARD", False)
    return _crossing_lowered(batches)


def test_fused_backward_has_a_smaller_arena_than_the_chain(
    native_runner, monkeypatch, crossing_batches):
  del native_runner
  chain = _chain_crossing(monkeypatch, crossing_batches)
  chain_ops = op_counts(chain.train_tflite)
  assert f"CUSTOM:{_GRAD_OP}" not in chain_ops
  assert chain_ops["CUSTOM:TL_DEPTHWISE_INPUT_GRAD"] >= 2
  fused = _crossing_lowered(crossing_batches)
  assert op_counts(fused.train_tflite)[f"CUSTOM:{_GRAD_OP}"] == 2
  before = measure_arena(chain.train_tflite)
  after = measure_arena(fused.train_tflite)
  print(f"crossed-block backward arena: three-op chain total {before.total} "
        f"(head {before.head}, tail {before.tail}) -> "
        f"{_GRAD_OP} total {after.total} (head {after.head}, tail "
        f"{after.tail})")
  assert after.total < before.total
  assert after.head < before.head


def test_crossed_blocks_train_exactly_with_a_smaller_arena(
    native_runner, monkeypatch, crossing_batches):
  del native_runner
  lowered = _crossing_lowered(crossing_batches)
  result = ts.compare(lowered, crossing_batches, perturbed_references=1)
  assert result["parity"] == "exact", result
  unfused = _unfused_crossing(monkeypatch, crossing_batches)
  assert op_counts(unfused.train_tflite).get(_OP, 0) == 0
  before = measure_arena(unfused.train_tflite)
  after = measure_arena(lowered.train_tflite)
  print(f"crossed-block train arena: unfused total {before.total} (head "
        f"{before.head}, tail {before.tail}) -> fused total {after.total} "
        f"(head {after.head}, tail {after.tail})")
  assert after.total < before.total
  persistent = "Persistent buffer data"
  assert after.breakdown[persistent] < before.breakdown[persistent]
