"""TL_INVERTED_RESIDUAL in TFLM: bit-identical to TFLM's own int8 CONV_2D ->
DEPTHWISE_CONV_2D -> CONV_2D chain with the same weights and quantization
(1x1 expands and wider or strided ones such as a 3x3 stride-2 stem), its
mask outputs to TL_RELU_MASK on that chain's int8 expanded map and
depthwise output, and Prepare rejects malformed blocks with a message naming
the tensor."""
import re

from flatbuffers import flexbuffers
import numpy as np
import pytest
from tensorflow.lite.python import schema_py_generated as schema

from tflite_tl import tflm
from tflite_tl.lower.tl import options as opt
from tflite_tl.lower.tl.flatbuffer_writer import GraphWriter
from tflite_tl.lower.tl.flatbuffer_writer import Quantization

Op = schema.BuiltinOperator
_ACT = {None: 0, "relu": 1, "relu6": 2}


def _block(seed, *, n=1, h=7, w=6, cin=4, e=12, cout=5, k=3, stride=1,
           padding="SAME", expand=True, act="relu6", expand_k=(1, 1),
           expand_stride=(1, 1), expand_padding="SAME"):
  """Random int8 weights and quantization of one block (the expand conv's
  window expand_k, strides expand_stride (h, w) and padding)."""
  rng = np.random.default_rng(seed)
  if not expand:
    e = cin

  def q(scale, zero):
    return Quantization.per_tensor(np.float32(scale), zero)

  p = {
      "shape": (n, h, w, cin), "stride": stride, "padding": padding,
      "act": act, "expand": expand, "expand_stride": expand_stride,
      "expand_padding": expand_padding,
      "q_in": q(rng.uniform(0.01, 0.05), int(rng.integers(-20, 20))),
      "q_exp": q(rng.uniform(0.02, 0.06), -128),
      "q_dw": q(rng.uniform(0.02, 0.06), -128),
      "q_out": q(rng.uniform(0.05, 0.2), int(rng.integers(-10, 10))),
  }
  def filt(shape, axis):
    values = rng.integers(-127, 128, shape).astype(np.int8)
    scales = rng.uniform(0.002, 0.02, shape[axis]).astype(np.float32)
    return values, scales

  def bias(c):
    return rng.integers(-3000, 3000, c).astype(np.int32)

  if expand:
    p["ef"], p["es"] = filt((e,) + tuple(expand_k) + (cin,), 0)
    p["eb"] = bias(e)
  p["df"], p["ds"] = filt((1, k, k, e), 3)
  p["db"] = bias(e)
  p["pf"], p["ps"] = filt((cout, 1, 1, e), 0)
  p["pb"] = bias(cout)
  p["out_c"] = cout
  return p


def _size(size, k, s, padding):
  return -(-size // s) if padding == "SAME" else (size - k) // s + 1


def _expanded_shape(p):
  """The expand conv's output [N, He, We, E] (the input's size without)."""
  n, h, w, _ = p["shape"]
  e = p["df"].shape[3]
  if not p["expand"]:
    return (n, h, w, e)
  (kh, kw), (sh, sw) = p["ef"].shape[1:3], p["expand_stride"]
  return (n, _size(h, kh, sh, p["expand_padding"]),
          _size(w, kw, sw, p["expand_padding"]), e)


def _out_shape(p):
  n, h, w, _ = _expanded_shape(p)
  k, s = p["df"].shape[1], p["stride"]
  return (n, _size(h, k, s, p["padding"]), _size(w, k, s, p["padding"]),
          p["out_c"])


def _constants(wr, p):
  def c(name, values, scales, axis):
    return wr.constant(name, values,
                       quantization=Quantization.per_channel(scales, axis))
  t = {}
  if p["expand"]:
    t["ef"] = c("ef", p["ef"], p["es"], 0)
    t["eb"] = wr.constant("eb", p["eb"])
  t["df"] = c("df", p["df"], p["ds"], 3)
  t["db"] = wr.constant("db", p["db"])
  t["pf"] = c("pf", p["pf"], p["ps"], 0)
  t["pb"] = wr.constant("pb", p["pb"])
  return t


def _mask_tensor(wr, name, shape):
  return wr.activation(name, [(int(np.prod(shape)) + 7) // 8], np.uint8)


def _chain_model(p, masks=False) -> bytes:
  """The builtin chain; with ``masks`` also TL_RELU_MASK of the activated
  int8 intermediates (as the unfused train step emits them)."""
  wr = GraphWriter("chain")
  outputs = []
  x = wr.activation("x", p["shape"], np.int8, p["q_in"])
  t = _constants(wr, p)
  e = p["df"].shape[3]
  dw_in = x
  if p["expand"]:
    dw_in = wr.activation("expanded", _expanded_shape(p), np.int8, p["q_exp"])
    options, kind = opt.conv2d(1, p["expand_padding"], p["act"])
    options.strideH, options.strideW = p["expand_stride"]
    wr.builtin(Op.CONV_2D, [x, t["ef"], t["eb"]], [dw_in], options, kind)
  out = _out_shape(p)
  dw = wr.activation("dw", out[:3] + (e,), np.int8, p["q_dw"])
  wr.builtin(Op.DEPTHWISE_CONV_2D, [dw_in, t["df"], t["db"]], [dw],
             *opt.depthwise_conv2d(p["stride"], p["padding"], p["act"]))
  if masks and p["act"] is not None:
    for tensor in ([dw_in] if p["expand"] else []) + [dw]:
      m = _mask_tensor(wr, f"{tensor.name}/mask", tensor.shape)
      wr.custom("TL_RELU_MASK", [tensor], [m],
                opt.tl("TL_RELU_MASK", relu6=p["act"] == "relu6"))
      outputs.append(m)
  y = wr.activation("y", out, np.int8, p["q_out"])
  wr.builtin(Op.CONV_2D, [dw, t["pf"], t["pb"]], [y], *opt.conv2d(1, "SAME"))
  return wr.finish([x], [y] + outputs)


def fused_options(p, **override):
  options = dict(
      depthwise_activation=_ACT[p["act"]],
      depthwise_scale=p["q_dw"].scale[0],
      depthwise_zero_point=p["q_dw"].zero_point[0],
      expand_activation=_ACT[p["act"]] if p["expand"] else 0,
      expand_scale=p["q_exp"].scale[0] if p["expand"] else 0.0,
      expand_zero_point=p["q_exp"].zero_point[0] if p["expand"] else 0,
      expand_padding={"VALID": 0, "SAME": 1}[p["expand_padding"]],
      expand_stride_h=p["expand_stride"][0],
      expand_stride_w=p["expand_stride"][1],
      padding={"VALID": 0, "SAME": 1}[p["padding"]],
      stride_h=p["stride"], stride_w=p["stride"])
  options.update(override)
  return options


def _fused_model(p, out_shape=None, options=None, inputs=None,
                 mask_shapes=None, raw_options=None) -> bytes:
  """The fused op; ``mask_shapes`` (of the masked tensors, expand first)
  adds the mask outputs; ``raw_options`` replaces the checked options."""
  wr = GraphWriter("fused")
  x = wr.activation("x", p["shape"], np.int8, p["q_in"])
  t = _constants(wr, p)
  y = wr.activation("y", out_shape or _out_shape(p), np.int8, p["q_out"])
  ins = [x, t.get("ef"), t.get("eb"), t["df"], t["db"], t["pf"], t["pb"]]
  if inputs is not None:
    ins = inputs(ins)
  masks = [_mask_tensor(wr, f"mask{i}", shape)
           for i, shape in enumerate(mask_shapes or [])]
  wr.custom("TL_INVERTED_RESIDUAL", ins, [y] + masks,
            raw_options or opt.tl("TL_INVERTED_RESIDUAL",
                                  **(options or fused_options(p))))
  return wr.finish([x], [y] + masks)


def _masked_shapes(p):
  """The shapes of the tensors the fused op masks: the expanded map (an
  expand conv with an activation), then the depthwise output."""
  if p["act"] is None:
    return []
  out = _out_shape(p)
  e = p["df"].shape[3]
  shapes = [_expanded_shape(p)] if p["expand"] else []
  return shapes + [out[:3] + (e,)]


def _run(model, x):
  return tflm.run_model(model, [[x]], backend="native").outputs[0][0]


def _run_all(model, x):
  return tflm.run_model(model, [[x]], backend="native").outputs[0]


_CASES = {
    "expand_s1_same": {},
    "expand_s2_same_odd": dict(h=9, w=7, stride=2),
    "expand_s2_same_even_batch2": dict(n=2, h=8, w=8, stride=2),
    "no_expand_s1_same": dict(expand=False, cin=6),
    "no_expand_s2_same": dict(expand=False, cin=6, h=8, w=9, stride=2),
    "expand_s1_valid_k5_relu": dict(h=9, w=8, k=5, padding="VALID",
                                    act="relu"),
    "expand_s2_valid_linear": dict(h=9, w=9, stride=2, padding="VALID",
                                   act=None),
    # A stem as the expand: 3x3 stride-2 SAME conv of a 1-channel image.
    "stem_k3_s2_same_odd": dict(h=13, w=11, cin=1, e=8, expand_k=(3, 3),
                                expand_stride=(2, 2)),
    "stem_k3_s2_same_even_dw_s2": dict(n=2, h=12, w=12, cin=3, e=8, stride=2,
                                       expand_k=(3, 3), expand_stride=(2, 2)),
    "expand_k3_s2_valid_odd_relu": dict(h=11, w=9, expand_k=(3, 3),
                                        expand_stride=(2, 2),
                                        expand_padding="VALID", act="relu"),
    "expand_k5_s1_valid_dw_valid": dict(h=11, w=10, expand_k=(5, 5),
                                        expand_padding="VALID",
                                        padding="VALID"),
    # Windows and strides need not be square.
    "expand_k2x3_s2x1_same_odd": dict(h=9, w=7, expand_k=(2, 3),
                                      expand_stride=(2, 1)),
}


@pytest.mark.parametrize("name", sorted(_CASES))
def test_fused_block_is_bit_identical_to_the_builtin_chain(native_runner,
                                                           name):
  del native_runner
  p = _block(sorted(_CASES).index(name), **_CASES[name])
  rng = np.random.default_rng(100)
  x = rng.integers(-128, 128, p["shape"]).astype(np.int8)
  chain = _run(_chain_model(p), x)
  fused = _run(_fused_model(p), x)
  assert fused.dtype == np.int8 and fused.shape == chain.shape
  np.testing.assert_array_equal(fused, chain)
  # Not a degenerate case: the outputs vary.
  assert len(np.unique(chain)) > 5


_MASK_CASES = {
    **_CASES,
    # The last expanded row is read by no window: its bits are still set.
    "expand_s2_valid_even_tail_row": dict(h=8, w=7, stride=2,
                                          padding="VALID"),
    # The stem's last expanded row is read by no window (VALID, stride 2).
    "stem_k3_s2_valid_tail_row": dict(h=17, w=13, cin=1, e=8, stride=2,
                                      padding="VALID", expand_k=(3, 3),
                                      expand_stride=(2, 2),
                                      expand_padding="VALID"),
}


@pytest.mark.parametrize("name", sorted(_MASK_CASES))
def test_mask_outputs_are_tl_relu_mask_of_the_chain(native_runner, name):
  del native_runner
  p = _block(40 + sorted(_MASK_CASES).index(name), **_MASK_CASES[name])
  rng = np.random.default_rng(7)
  x = rng.integers(-128, 128, p["shape"]).astype(np.int8)
  chain = _run_all(_chain_model(p, masks=True), x)
  fused = _run_all(_fused_model(p, mask_shapes=_masked_shapes(p)), x)
  assert len(fused) == len(chain) == 1 + len(_masked_shapes(p))
  for got, want in zip(fused, chain):
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
  for mask in chain[1:]:  # not degenerate: both values of the bit occur
    bits = np.unpackbits(mask)
    assert 0 < bits.sum() < bits.size


def test_fused_block_keeps_no_expanded_map_in_the_arena(native_runner):
  del native_runner
  p = _block(1, h=16, w=16, cin=8, e=48, cout=8)
  chain = tflm.measure_arena(_chain_model(p), backend="native")
  fused = tflm.measure_arena(_fused_model(p), backend="native")
  expanded = 16 * 16 * 48
  assert chain.head >= expanded
  # Input, output, the multipliers and shifts of 48 + 48 + 8 channels, and a
  # ring of 3 rows (3 x 16 x 48 B) plus one pixel.
  channels = 48 + 48 + 8
  assert fused.head <= 16 * 16 * 8 * 2 + 8 * channels + 3 * 16 * 48 + 48 + 64
  # No per-channel persistent data (the chain keeps 8 B per channel).
  persistent = "Persistent buffer data"
  assert fused.breakdown[persistent] < 8 * channels <= chain.breakdown[persistent]


@pytest.mark.parametrize("edit,message", [
    (lambda p: dict(out_shape=(1, 6, 6, 5)),
     "TL_INVERTED_RESIDUAL: output is 1x6x6x5 but the block's output is "
     "1x7x6x5"),
    (lambda p: dict(inputs=lambda ins: ins[:2] + [None] + ins[3:]),
     "expand_filter and expand_bias are both present or both absent"),
    (lambda p: dict(inputs=lambda ins: ins[:5] + [ins[1]] + ins[6:]),
     "project_filter must be [5, 1, 1, 12]"),
    (lambda p: dict(inputs=lambda ins: ins[:6] + [ins[2]]),
     "project_bias must be int32 [5]"),
    (lambda p: dict(options=fused_options(p, expand_scale=0.0)),
     "expand_scale must be positive"),
    (lambda p: dict(mask_shapes=[(1, 7, 6, 11), (1, 7, 6, 12)]),
     "expand_mask must be uint8 [63] (the 1-bit mask of 504 values)"),
    (lambda p: dict(mask_shapes=[(1, 7, 6, 12), (1, 7, 6, 13)]),
     "depthwise_mask must be uint8 [63]"),
    (lambda p: dict(mask_shapes=[(1, 7, 6, 12)]),
     "expects 1 output, or 3 with the masks of the activated stages"),
    # Past the Python checks of tflm_ops.custom_options: TFLM's Init.
    (lambda p: dict(raw_options=bytes(flexbuffers.Dumps(
        fused_options(p, expand_stride_w=0)))),
     "expand_stride_h, expand_stride_w, stride_h, stride_w (positive)"),
])
def test_prepare_rejects_bad_blocks(native_runner, edit, message):
  del native_runner
  p = _block(3)
  x = np.zeros(p["shape"], np.int8)
  with pytest.raises(tflm.TflmRuntimeError, match=re.escape(message)):
    _run(_fused_model(p, **edit(p)), x)


@pytest.mark.parametrize("edit,message", [
    # Masks of the input's size instead of the 4x3 expanded map's.
    (lambda p: dict(mask_shapes=[(1, 9, 7, 8), (1, 4, 3, 8)]),
     "expand_mask must be uint8 [12] (the 1-bit mask of 96 values)"),
    (lambda p: dict(out_shape=(1, 9, 7, 5)),
     "output is 1x9x7x5 but the block's output is 1x4x3x5"),
    # The expand's padding decides the expanded map's size: SAME gives 5x4.
    (lambda p: dict(options=fused_options(p, expand_padding=1)),
     "output is 1x4x3x5 but the block's output is 1x5x4x5"),
])
def test_prepare_checks_the_expand_geometry(native_runner, edit, message):
  del native_runner
  p = _block(5, h=9, w=7, e=8, expand_k=(3, 3), expand_stride=(2, 2),
             expand_padding="VALID")
  x = np.zeros(p["shape"], np.int8)
  with pytest.raises(tflm.TflmRuntimeError, match=re.escape(message)):
    _run(_fused_model(p, **edit(p)), x)


def test_prepare_rejects_an_expand_window_larger_than_a_valid_input(
    native_runner):
  del native_runner
  p = _block(6, h=4, w=9, expand_k=(5, 3), expand_padding="VALID")
  x = np.zeros(p["shape"], np.int8)
  with pytest.raises(tflm.TflmRuntimeError, match=re.escape(
      "TL_INVERTED_RESIDUAL: the 5x3 expand window (stride 1x1, VALID) does "
      "not fit the 4x9 input")):
    _run(_fused_model(p, out_shape=(1, 1, 7, 5)), x)
