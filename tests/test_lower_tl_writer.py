"""The kernel flavor's flatbuffer writer: valid models TFLM runs, aligned
constants, shared buffers for re-viewed constants, variable tensors and
metadata, deterministic bytes."""
import json

import numpy as np

from tflite_tl.lower.tl import options as opt
from tflite_tl.lower.tl.flatbuffer_writer import GraphWriter
from tflite_tl.lower.tl.flatbuffer_writer import Quantization
from tflite_tl.lower.tl.flatbuffer_writer import schema
from tflite_tl.tflm import run_model


def _add_graph():
  w = GraphWriter()
  a = w.activation("a", [1, 4])
  c = w.constant("c", np.arange(4, dtype=np.float32).reshape(1, 4))
  y = w.activation("y", [1, 4])
  w.builtin(schema.BuiltinOperator.ADD, [a, c], [y], *opt.add())
  return w, a, c, y


def test_graph_runs_in_tflm():
  w, a, _, y = _add_graph()
  model = w.finish([a], [y])
  out = run_model(model, [[np.ones((1, 4), np.float32)]]).outputs[0][0]
  np.testing.assert_array_equal(out, [[1, 2, 3, 4]])


def test_constant_data_is_16_byte_aligned():
  w = GraphWriter()
  a = w.activation("a", [3])
  for k in range(5):  # odd sizes shift naive packing off alignment
    w.constant(f"c{k}", np.arange(k + 1, dtype=np.int8))
  model = w.finish([a], [a])
  m = schema.Model.GetRootAsModel(model, 0)
  base = np.frombuffer(model, np.uint8).ctypes.data
  for i in range(1, m.BuffersLength()):
    data = m.Buffers(i).DataAsNumpy()
    if isinstance(data, np.ndarray) and data.size:
      assert (data.ctypes.data - base) % 16 == 0


def test_reshaped_constant_shares_its_buffer():
  w = GraphWriter()
  c = w.constant("k", np.zeros([8, 1, 1, 4], np.int8),
                 quantization=Quantization.per_channel(np.ones(8)))
  v = w.reshaped(c, [8, 4], "k_matrix")
  x = w.activation("x", [1])
  model = w.finish([x], [x])
  sg = schema.Model.GetRootAsModel(model, 0).Subgraphs(0)
  assert sg.Tensors(c.index).Buffer() == sg.Tensors(v.index).Buffer()
  assert list(sg.Tensors(v.index).ShapeAsNumpy()) == [8, 4]


def test_variables_metadata_and_determinism():
  def build():
    w = GraphWriter()
    v = w.variable("bias", np.ones(3, np.float32))
    x = w.activation("x", [3])
    y = w.activation("y", [3])
    w.builtin(schema.BuiltinOperator.ADD, [x, v], [y], *opt.add())
    w.add_metadata("tflite_tl", json.dumps({"k": 1}).encode())
    return w.finish([x], [y])
  first, second = build(), build()
  assert first == second
  m = schema.Model.GetRootAsModel(first, 0)
  assert m.Subgraphs(0).Tensors(0).IsVariable()
  assert m.Metadata(0).Name() == b"tflite_tl"
  data = bytes(m.Buffers(m.Metadata(0).Buffer()).DataAsNumpy())
  assert json.loads(data) == {"k": 1}


def test_names_are_made_unique():
  w = GraphWriter()
  assert w.activation("t", [1]).name == "t"
  assert w.activation("t", [1]).name == "t_1"
