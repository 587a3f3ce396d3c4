"""TL_CONV and TL_DEPTHWISE_CONV on int8 tensors in TFLM: bit-identical to
TFLM's own int8 CONV_2D / DEPTHWISE_CONV_2D with the same weights and
quantization, their mask output to TL_RELU_MASK on the builtin's int8
output, and no per-channel persistent buffers (the builtins keep 8 bytes per
output channel in the tail). A float32 bias (a trained bias's master) is
quantized per invoke with scale s_input * s_filter[c]: the same output as
the builtin reading that int32 bias. Prepare rejects an int8 input with a
float filter, naming the filter, and a bias of another type."""
import re

import numpy as np
import pytest
from tensorflow.lite.python import schema_py_generated as schema

from tflite_tl import tflm
from tflite_tl.lower.tl import options as opt
from tflite_tl.lower.tl import quantization as quant
from tflite_tl.lower.tl.flatbuffer_writer import GraphWriter
from tflite_tl.lower.tl.flatbuffer_writer import Quantization

Op = schema.BuiltinOperator
_ACT = {None: 0, "relu": 1, "relu6": 2}


def _size(size, k, s, padding):
  return -(-size // s) if padding == "SAME" else (size - k) // s + 1


def _layer(seed, *, depthwise, n=1, h=7, w=6, cin=5, cout=12, k=3, stride=1,
           padding="SAME", act="relu6", bias=True):
  """Random int8 weights and quantization of one conv (or depthwise)."""
  rng = np.random.default_rng(seed)
  if depthwise:
    cout = cin
  shape = (1, k, k, cout) if depthwise else (cout, k, k, cin)
  axis = 3 if depthwise else 0
  return {
      "depthwise": depthwise, "shape": (n, h, w, cin), "stride": stride,
      "padding": padding, "act": act,
      "out": (n, _size(h, k, stride, padding), _size(w, k, stride, padding),
              cout),
      "q_in": Quantization.per_tensor(np.float32(rng.uniform(0.01, 0.05)),
                                      int(rng.integers(-20, 20))),
      "q_out": Quantization.per_tensor(np.float32(rng.uniform(0.02, 0.08)),
                                       int(rng.integers(-30, 0))),
      "filter": rng.integers(-127, 128, shape).astype(np.int8),
      "scales": rng.uniform(0.002, 0.02, shape[axis]).astype(np.float32),
      "axis": axis,
      "bias": (rng.integers(-3000, 3000, cout).astype(np.int32)
               if bias else None),
  }


def _float_bias(p):
  """A float bias whose quantization with scale s_in * s_filter (float32)
  is p["bias"] up to rounding, its last channel saturating; returns it and
  its int32 form (the lowering's quantize_bias)."""
  scales = np.float32(p["q_in"].scale[0]) * p["scales"]
  rng = np.random.default_rng(11)
  value = (p["bias"].astype(np.float64) + rng.uniform(-0.49, 0.49,
                                                      p["bias"].shape))
  bias = (value * scales.astype(np.float64)).astype(np.float32)
  bias[-1] = np.float32(3e38)    # saturates to INT32_MAX
  return bias, quant.quantize_bias(bias, scales)


def _inputs(wr, p, float_bias=False):
  x = wr.activation("x", p["shape"], np.int8, p["q_in"])
  f = wr.constant("filter", p["filter"],
                  quantization=Quantization.per_channel(p["scales"],
                                                        p["axis"]))
  b = None
  if p["bias"] is not None:
    b = wr.constant("bias", _float_bias(p)[0] if float_bias else p["bias"])
  return x, f, b


def _mask(wr, shape):
  return wr.activation("mask", [(int(np.prod(shape)) + 7) // 8], np.uint8)


def _builtin_model(p) -> bytes:
  """The builtin op, and TL_RELU_MASK of its output when activated."""
  wr = GraphWriter("builtin")
  x, f, b = _inputs(wr, p)
  y = wr.activation("y", p["out"], np.int8, p["q_out"])
  if p["depthwise"]:
    wr.builtin(Op.DEPTHWISE_CONV_2D, [x, f, b], [y],
               *opt.depthwise_conv2d(p["stride"], p["padding"], p["act"]))
  else:
    wr.builtin(Op.CONV_2D, [x, f, b], [y],
               *opt.conv2d(p["stride"], p["padding"], p["act"]))
  outputs = [y]
  if p["act"] is not None:
    m = _mask(wr, p["out"])
    wr.custom("TL_RELU_MASK", [y], [m],
              opt.tl("TL_RELU_MASK", relu6=p["act"] == "relu6"))
    outputs.append(m)
  return wr.finish([x], outputs)


def _tl_model(p, filter_dtype=None, float_bias=False) -> bytes:
  wr = GraphWriter("tl")
  x, f, b = _inputs(wr, p, float_bias)
  if filter_dtype is not None:
    f = wr.constant("float_filter", p["filter"].astype(filter_dtype))
  y = wr.activation("y", p["out"], np.int8, p["q_out"])
  outputs = [y] + ([_mask(wr, p["out"])] if p["act"] is not None else [])
  geometry = dict(padding={"VALID": 0, "SAME": 1}[p["padding"]],
                  stride_h=p["stride"], stride_w=p["stride"],
                  activation=_ACT[p["act"]])
  if p["depthwise"]:
    wr.custom("TL_DEPTHWISE_CONV", [x, f, b], outputs,
              opt.tl("TL_DEPTHWISE_CONV", **geometry))
  else:
    wr.custom("TL_CONV", [x, f, b], outputs,
              opt.tl("TL_CONV", standardize=False, epsilon=0.0, **geometry))
  return wr.finish([x], outputs)


_CASES = {
    "conv_1x1_relu6": dict(k=1),
    "conv_3x3_s1_same_relu6": {},
    "conv_3x3_s2_same_odd_relu": dict(h=9, w=7, stride=2, act="relu"),
    "conv_3x3_s2_valid_linear_batch2": dict(n=2, h=9, w=9, stride=2,
                                            padding="VALID", act=None),
    "conv_1x1_no_bias": dict(k=1, bias=False),
    "depthwise_3x3_s1_same_relu6": {},
    "depthwise_3x3_s2_same_even_relu6_batch2": dict(n=2, h=8, w=8, stride=2),
    "depthwise_5x5_s1_valid_relu": dict(h=9, w=8, k=5, padding="VALID",
                                        act="relu"),
    # (TFLM's int8 DEPTHWISE_CONV_2D aborts without a bias: no such case.)
    "depthwise_3x3_linear": dict(act=None),
}


@pytest.mark.parametrize("name", sorted(_CASES))
def test_int8_forward_is_bit_identical_to_the_builtin(native_runner, name):
  del native_runner
  p = _layer(sorted(_CASES).index(name), depthwise=name.startswith("depth"),
             **_CASES[name])
  x = np.random.default_rng(7).integers(-128, 128, p["shape"]).astype(np.int8)
  builtin = tflm.run_model(_builtin_model(p), [[x]], backend="native")
  ours = tflm.run_model(_tl_model(p), [[x]], backend="native")
  want, got = builtin.outputs[0], ours.outputs[0]
  assert got[0].dtype == np.int8 and got[0].shape == want[0].shape
  np.testing.assert_array_equal(got[0], want[0])
  assert len(np.unique(want[0])) > 5  # not a degenerate case
  if p["act"] is not None:  # the mask output: TL_RELU_MASK's bits
    np.testing.assert_array_equal(got[1], want[1])
    assert 0 < np.unpackbits(want[1]).sum() < 8 * want[1].size


@pytest.mark.parametrize("name", ["conv_3x3_s2_same_odd_relu",
                                  "depthwise_3x3_s2_same_even_relu6_batch2"])
def test_float_bias_is_quantized_per_invoke(native_runner, name):
  """The builtin reads the int32 bias the lowering would store; ours reads
  the float master and quantizes it itself (a saturated channel too)."""
  del native_runner
  p = _layer(sorted(_CASES).index(name), depthwise=name.startswith("depth"),
             **_CASES[name])
  p["bias"] = p["bias"] * 20
  float_bias, int32_bias = _float_bias(p)
  assert int32_bias[-1] == np.iinfo(np.int32).max
  builtin_p = dict(p, bias=int32_bias)
  x = np.random.default_rng(7).integers(-128, 128, p["shape"]).astype(np.int8)
  builtin = tflm.run_model(_builtin_model(builtin_p), [[x]], backend="native")
  ours = tflm.run_model(_tl_model(p, float_bias=True), [[x]],
                        backend="native")
  np.testing.assert_array_equal(ours.outputs[0][0], builtin.outputs[0][0])
  assert len(np.unique(builtin.outputs[0][0])) > 5


def test_float_bias_costs_only_scratch(native_runner):
  """The float bias adds out_c ints to the per-invoke scratch (head), and
  nothing to the persistent tail."""
  del native_runner
  p = _layer(0, depthwise=False, cin=8, cout=96, k=1, act=None)
  int32 = tflm.measure_arena(_tl_model(p), backend="native")
  floats = tflm.measure_arena(_tl_model(p, float_bias=True), backend="native")
  persistent = "Persistent buffer data"
  assert floats.breakdown[persistent] == int32.breakdown[persistent]
  assert floats.tail == int32.tail


def test_int8_forward_keeps_no_per_channel_buffers(native_runner):
  """The builtin keeps two int32 per output channel in the persistent
  tail; the TL op computes them per invoke, in scratch in the head."""
  del native_runner
  p = _layer(0, depthwise=False, cin=8, cout=96, k=1, act=None)
  builtin = tflm.measure_arena(_builtin_model(p), backend="native")
  ours = tflm.measure_arena(_tl_model(p), backend="native")
  persistent = "Persistent buffer data"
  # Ours: the OpData alone (its geometry and quantization, under 256 B).
  assert ours.breakdown[persistent] < 256
  assert builtin.breakdown[persistent] >= 8 * 96


def test_int8_conv_rejects_an_int8_bias(native_runner):
  del native_runner
  p = _layer(1, depthwise=False, k=1)
  p["bias"] = p["bias"].astype(np.int8)
  x = np.zeros(p["shape"], np.int8)
  with pytest.raises(Exception, match=re.escape(
      "TL_CONV: bias must be int32 or float32 [12]")):
    tflm.run_model(_tl_model(p), [[x]], backend="native")


def test_int8_input_with_a_float_filter_is_rejected(native_runner):
  del native_runner
  p = _layer(1, depthwise=False, k=1)
  x = np.zeros(p["shape"], np.int8)
  with pytest.raises(Exception, match=re.escape(
      "TL_CONV: filter must be int8 OHWI")):
    tflm.run_model(_tl_model(p, filter_dtype=np.float32), [[x]],
                   backend="native")
