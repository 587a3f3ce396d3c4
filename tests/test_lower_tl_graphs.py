"""Kernel-flavor train-step graphs, checked without a TFLM runtime: the ops
each method needs, variables with their layouts, parameters read and written
(int32 copies of int8 graphs follow their float masters)."""
import numpy as np
import pytest

import tflite_tl as tl
from tflite_tl.flatbuffer import lifetimes
from tflite_tl.flatbuffer import reader
from tflite_tl.lower import lower_model
from tflite_tl.lower import read_params
from tflite_tl.lower import write_params
from tflite_tl.lower.builtins import op_counts
from tflite_tl.lower.tl import params as tl_params
from tflite_tl.lower.tl import quantization as quant


def _images(n=8, resolution=32):
  rng = np.random.default_rng(0)
  return (rng.integers(0, 256, (n, resolution, resolution, 1))
          / 255.0).astype(np.float32)


@pytest.fixture(scope="module")
def tiny():
  return tl.load_pretrained("tiny")


@pytest.mark.parametrize("precision", ["float", "int8"])
def test_tinytl_b_is_one_op_per_step_of_each_layer(tiny, precision):
  model = tl.apply_method(tiny, "tinytl_b", num_classes=10)
  low = lower_model(model, batch_size=2, learning_rate=0.01, kernels="tl",
                    precision=precision, calibration_images=_images())
  ops = op_counts(low.train_tflite)
  assert ops["CUSTOM:TL_SOFTMAX_XENT"] == 1
  # Every trained bias has an in-place update, no READ/ASSIGN_VARIABLE.
  assert "READ_VARIABLE" not in ops and "ASSIGN_VARIABLE" not in ops
  # One op per layer and step, or per three: each depthwise conv's backward
  # is fused with its upstream conv's and that of the 1x1 conv after it
  # (TL_DEPTHWISE_CHAIN_UPDATE).
  chains = ops.get("CUSTOM:TL_DEPTHWISE_CHAIN_UPDATE", 0)
  assert chains == 2 and "CUSTOM:TL_DEPTHWISE_UPDATE" not in ops
  assert ops["CUSTOM:TL_CONV_UPDATE"] + 3 * chains == 8
  # Each input gradient is written by the layer's update op (its 9th input
  # is the forward's filter).
  assert "CUSTOM:TL_CONV_INPUT_GRAD" not in ops
  assert "CUSTOM:TL_DEPTHWISE_INPUT_GRAD" not in ops
  if precision == "float":
    # The float depthwise forward and its ReLU mask are one TL op; the
    # predict graph keeps the builtin.
    assert "DEPTHWISE_CONV_2D" not in ops and ops["CUSTOM:TL_DEPTHWISE_CONV"] > 0
    assert "DEPTHWISE_CONV_2D" in op_counts(low.predict_tflite)
    # Likewise the float convs (TL_CONV keeps no per-channel buffers).
    assert "CONV_2D" not in ops and ops["CUSTOM:TL_CONV"] > 0
    assert "CONV_2D" in op_counts(low.predict_tflite)
  assert low.kernels == "tl" and low.precision == precision
  # No transposed or flipped weight copies: train.tflite ~ predict model.
  assert len(low.train_tflite) < 1.45 * len(low.predict_tflite)


def test_tinytl_lb_weight_standardised_conv_is_one_op_each_way(tiny):
  model = tl.apply_method(tiny, "tinytl_lb", num_classes=10)
  low = lower_model(model, batch_size=2, learning_rate=0.01, kernels="tl")
  ops = op_counts(low.train_tflite)
  # Each lite residual conv: TL_CONV convolves with its standardised kernel
  # (w_hat on the fly, no second output); TL_WS_CONV_UPDATE, given the raw
  # kernel again as input 8, writes the input gradient through w_hat and
  # steps the raw kernel. No standardised kernel is a tensor of the step.
  ws_convs = ops["CUSTOM:TL_WS_CONV_UPDATE"]
  assert ws_convs > 0
  assert "CONV_2D" not in ops and ops["CUSTOM:TL_CONV"] >= ws_convs
  for gone in ("TL_WEIGHT_STANDARDIZE", "TL_WEIGHT_STANDARDIZE_GRAD",
               "TL_CONV_WGRAD_SPARSE", "TL_SGD_UPDATE", "TL_CONV_INPUT_GRAD"):
    assert f"CUSTOM:{gone}" not in ops
  planned = [t.name for t in lifetimes.tensor_lifetimes(low.train_tflite)[0]]
  assert planned and not [n for n in planned if n.endswith("/kernel_hat")]


def test_params_round_trip_in_keras_layout(tiny):
  model = tl.apply_method(tiny, "ft_last", num_classes=10)
  low = lower_model(model, batch_size=1, learning_rate=0.01, kernels="tl")
  params = read_params(low.train_tflite)
  want = {w.name.split(":")[0]: w.numpy() for w in model.trainable_weights}
  assert set(params) == set(want)
  for name, value in want.items():
    np.testing.assert_array_equal(params[name], value)
  changed = {n: v + 1.0 for n, v in params.items()}
  again = read_params(write_params(low.train_tflite, changed))
  for name in changed:
    np.testing.assert_array_equal(again[name], changed[name])


def test_int8_forward_reads_trained_biases_as_float_masters(tiny):
  """With QAS the int8 TL_CONV / TL_DEPTHWISE_CONV quantize a trained bias
  per invoke: no int32 copy is a variable (4 bytes per channel saved)."""
  model = tl.apply_method(tiny, "tinytl_b", num_classes=10)
  low = lower_model(model, batch_size=1, learning_rate=0.01, kernels="tl",
                    precision="int8", calibration_images=_images())
  specs = {s.name: s for s in tl_params.variables(low.train_tflite)}
  assert "block1_expand/bias" in specs
  assert not [n for n in specs if n.endswith(":int32")], sorted(specs)
  bias = specs["block1_expand/bias"].tensor
  readers = [ins for ins in reader.op_inputs(low.train_tflite,
                                             "CUSTOM:TL_CONV")
             if len(ins) > 2 and ins[2] == bias]
  assert len(readers) == 1, "the forward conv reads the float bias"


def test_int8_bias_copies_follow_the_master(tiny):
  """The QAS ablation keeps the int32 copies (its update scales the bias
  gradient by their scales); write_params recomputes them."""
  model = tl.apply_method(tiny, "tinytl_b", num_classes=10)
  low = lower_model(model, batch_size=1, learning_rate=0.01, kernels="tl",
                    precision="int8", qas=False,
                    calibration_images=_images())
  specs = {s.name: s for s in tl_params.variables(low.train_tflite)}
  name = "block1_expand/bias"
  assert specs[name + ":int32"].role == "derived"
  new = write_params(low.train_tflite,
                     {name: np.full(specs[name].shape, 0.5, np.float32)})
  raw = tl_params.read_variables(new)
  from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=import-outside-toplevel
  t = schema.Model.GetRootAsModel(new, 0).Subgraphs(0).Tensors(
      specs[name + ":int32"].tensor)
  scales = t.Quantization().ScaleAsNumpy()
  np.testing.assert_array_equal(raw[name + ":int32"],
                                quant.quantize_bias(np.full_like(scales, 0.5),
                                                    scales))


def test_int8_needs_calibration_images(tiny):
  model = tl.apply_method(tiny, "tinytl_b", num_classes=10)
  with pytest.raises(ValueError, match="calibration_images"):
    lower_model(model, batch_size=1, learning_rate=0.01, kernels="tl",
                precision="int8")
  with pytest.raises(ValueError, match="precision must be one of"):
    lower_model(model, batch_size=1, learning_rate=0.01, kernels="tl",
                precision="int4", calibration_images=_images())
