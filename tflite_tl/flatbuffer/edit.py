"""Edited copies of a .tflite: extra outputs, new initial variable values.

Edits go through the schema's object API (unpack, change, pack); the input
bytes are never modified. Variables and their initial assignments are found
by :mod:`tflite_tl.flatbuffer.reader`, so reading and writing agree.
"""
import copy
from typing import Iterable, Mapping

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tflite_tl.flatbuffer import reader


def unpack(tflite_bytes: bytes):
  """The mutable object tree (``schema.ModelT``) of a .tflite."""
  # Vectors unpack as numpy views of the buffer: a bytearray keeps them
  # writable.
  return schema.ModelT.InitFromObj(reader.root(bytearray(tflite_bytes)))


def pack(model) -> bytes:
  """Flatbuffer bytes of a ``schema.ModelT`` with the 'TFL3' identifier."""
  builder = flatbuffers.Builder(1024)
  builder.Finish(model.Pack(builder), file_identifier=reader.IDENTIFIER)
  return bytes(builder.Output())


def with_extra_outputs(tflite_bytes: bytes, tensor_indices: Iterable[int]
                       ) -> bytes:
  """A copy whose subgraph 0 also outputs ``tensor_indices`` (appended after
  the existing outputs, in order). Outputs are never reused by TFLM's memory
  planner, so their values can be read after an invoke."""
  model = unpack(tflite_bytes)
  sg = model.subgraphs[0]
  sg.outputs = list(sg.outputs) + [int(i) for i in tensor_indices]
  return pack(model)


def _shared(model, sg_index: int, t_index: int) -> bool:
  """Whether the constant tensor or its buffer has any other user."""
  buffer = model.subgraphs[sg_index].tensors[t_index].buffer
  tensor_uses = sum(
      list(op.inputs).count(t_index)
      for op in model.subgraphs[sg_index].operators if op.inputs is not None)
  buffer_uses = sum(1 for sg in model.subgraphs for t in sg.tensors
                    if t.buffer == buffer)
  return tensor_uses > 1 or buffer_uses > 1


def with_initial_values(tflite_bytes: bytes,
                        values: Mapping[str, np.ndarray]) -> bytes:
  """A copy of the model whose variables start at ``values`` (by name).

  Every name must be a variable of the model and every array must keep that
  variable's shape; variables not named keep their values. A variable whose
  constant the converter shared with another (equal initial values, e.g.
  zero biases) first gets a constant tensor and buffer of its own.
  """
  assignments = reader.initial_assignments(reader.root(tflite_bytes))
  unknown = sorted(set(values) - set(assignments))
  if unknown:
    raise KeyError(f"Not variables of this model: {unknown}. "
                   f"Variables: {sorted(assignments)}.")
  model = unpack(tflite_bytes)
  for name in sorted(values):
    a = assignments[name]
    new = np.asarray(values[name])
    if tuple(new.shape) != tuple(a.value.shape):
      raise ValueError(f"Parameter {name!r} has shape {tuple(a.value.shape)}; "
                       f"got {tuple(new.shape)}.")
    sg = model.subgraphs[a.subgraph]
    t_index = a.value.index
    if _shared(model, a.subgraph, t_index):
      tensor = copy.deepcopy(sg.tensors[t_index])
      tensor.name = (tensor.name or b"") + b"/" + name.encode()
      model.buffers.append(schema.BufferT())
      tensor.buffer = len(model.buffers) - 1
      sg.tensors.append(tensor)
      t_index = len(sg.tensors) - 1
      sg.operators[a.op_index].inputs[1] = t_index
    tensor = sg.tensors[t_index]
    model.buffers[tensor.buffer].data = np.frombuffer(
        new.astype(a.value.numpy_dtype).tobytes(), np.uint8).copy()
  return pack(model)
