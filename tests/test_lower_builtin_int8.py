"""Builtin flavor, int8 weights: frozen kernels int8 in the flatbuffer,
rebuilt by DEQUANTIZE + MUL; TFLM parity with the TF reference."""
import numpy as np
import pytest
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tflite_tl import models
from tflite_tl import rewrite
from tflite_tl._compat import keras
from tflite_tl.flatbuffer import edit
from tflite_tl.lower import lower_model
from tflite_tl.lower.fake_quant import fake_quantized_kernels
from tflite_tl.verify.train_step import compare
from tflite_tl.verify.train_step import random_batches

_STEPS = 20


@pytest.fixture(scope="module")
def model():
  keras.utils.set_random_seed(0)
  backbone = models.get_model("tiny", resolution=32, input_channels=1,
                              num_classes=10)
  return rewrite.apply_method(backbone, "tinytl_b", num_classes=10, seed=0)


def _batches(model, steps=_STEPS):
  return random_batches(0, steps, 1, model.input_shape[1:], 10)


def _float_constants(tflite_bytes):
  m = edit.unpack(tflite_bytes)
  sg = m.subgraphs[0]
  out = []
  for t in sg.tensors:
    data = m.buffers[t.buffer].data if t.buffer else None
    if data is not None and t.type == schema.TensorType.FLOAT32:
      out.append(np.sort(np.frombuffer(np.asarray(data, np.uint8).tobytes(),
                                       np.float32)))
  return out, m


@pytest.fixture(scope="module")
def lowered(model):
  return lower_model(model, batch_size=1, learning_rate=0.01,
                     precision="int8")


def test_int8_weights_and_no_float_copy(model, lowered):
  float_lowered = lower_model(model, batch_size=1, learning_rate=0.01)
  with fake_quantized_kernels(model) as kernels:
    pass
  stats = lowered.int8_stats
  assert stats.kernels == len(kernels) and not stats.unmatched
  assert stats.int8_bytes == sum(k.values.size for k in kernels)
  floats, m = _float_constants(lowered.train_tflite)
  kernel_keys = {np.sort(k.values.reshape(-1)).tobytes() for k in kernels}
  assert not any(c.tobytes() in kernel_keys for c in floats)
  int8_bytes = sum(
      int(np.prod(t.shape)) for t in m.subgraphs[0].tensors
      if t.type == schema.TensorType.INT8 and t.buffer
      and m.buffers[t.buffer].data is not None)
  assert int8_bytes == stats.int8_bytes
  ops = lowered.train_ops()
  assert ops["DEQUANTIZE"] == stats.constants
  assert len(lowered.train_tflite) < len(float_lowered.train_tflite)
  assert len(lowered.predict_tflite) < len(float_lowered.predict_tflite)
  assert lowered.precision == "int8" and lowered.kernels == "builtin"


def test_parity_over_20_steps(model, lowered):
  result = compare(lowered, _batches(model), arena=False)
  assert result["parity"] == "exact", result


def test_row_blocks_keep_parity(model):
  chunked = lower_model(model, batch_size=1, learning_rate=0.01,
                        precision="int8", int8_chunk_elements=64)
  assert chunked.int8_stats.chunked_ops > 0
  assert chunked.train_ops()["CONCATENATION"] >= chunked.int8_stats.chunked_ops
  result = compare(chunked, _batches(model, 5), arena=False)
  assert result["parity"] == "exact", result


def test_a_wrong_scale_fails_parity(model, lowered):
  m = edit.unpack(lowered.train_tflite)
  sg = m.subgraphs[0]
  code = {i: max(c.builtinCode, c.deprecatedBuiltinCode)
          for i, c in enumerate(m.operatorCodes)}
  dequantized = {int(op.outputs[0]) for op in sg.operators
                 if code[op.opcodeIndex] == schema.BuiltinOperator.DEQUANTIZE}
  scales = {int(op.inputs[1]) for op in sg.operators
            if code[op.opcodeIndex] == schema.BuiltinOperator.MUL
            and int(op.inputs[0]) in dequantized}
  assert scales
  for buffer in {sg.tensors[i].buffer for i in scales}:
    buf = m.buffers[buffer]
    values = np.frombuffer(np.asarray(buf.data, np.uint8).tobytes(),
                           np.float32) * np.float32(1.25)
    buf.data = np.frombuffer(values.astype(np.float32).tobytes(),
                             np.uint8).copy()
  broken = type(lowered)(edit.pack(m), lowered.predict_tflite,
                         lowered.param_specs, lowered.module,
                         kernels="builtin", precision="int8")
  result = compare(broken, _batches(model, 5), arena=False,
                   perturbed_references=1)
  assert result["parity"] == "failed", result


def test_momentum_keeps_parity(model):
  lowered = lower_model(model, batch_size=1, learning_rate=0.01,
                        momentum=0.9, precision="int8")
  assert lowered.module.slots
  result = compare(lowered, _batches(model, 3), arena=False,
                   perturbed_references=1)
  assert result["parity"] == "exact", result
