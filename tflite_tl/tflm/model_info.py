"""Static facts about a .tflite read from its flatbuffer: subgraph-0 inputs and
outputs, the tensors that expose each variable, and a safe arena bound."""
import dataclasses
from typing import Dict, List

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

_BYTES = {schema.TensorType.FLOAT32: 4, schema.TensorType.INT32: 4,
          schema.TensorType.INT8: 1, schema.TensorType.UINT8: 1,
          schema.TensorType.BOOL: 1, schema.TensorType.INT16: 2,
          schema.TensorType.INT64: 8, schema.TensorType.RESOURCE: 8}


@dataclasses.dataclass(frozen=True)
class TensorInfo:
  name: str
  index: int
  shape: List[int]


def _model(tflite_bytes):
  return schema.Model.GetRootAsModel(tflite_bytes, 0)


def _tensor_info(sg, index) -> TensorInfo:
  t = sg.Tensors(index)
  return TensorInfo(t.Name().decode(), index, t.ShapeAsNumpy().tolist()
                    if t.ShapeLength() else [])


def inputs(tflite_bytes: bytes) -> List[TensorInfo]:
  """Subgraph 0's inputs in interpreter order."""
  sg = _model(tflite_bytes).Subgraphs(0)
  return [_tensor_info(sg, int(i)) for i in sg.InputsAsNumpy()]


def outputs(tflite_bytes: bytes) -> List[TensorInfo]:
  """Subgraph 0's outputs in interpreter order."""
  sg = _model(tflite_bytes).Subgraphs(0)
  return [_tensor_info(sg, int(i)) for i in sg.OutputsAsNumpy()]


def variable_readouts(tflite_bytes: bytes) -> Dict[str, int]:
  """{variable name: subgraph-0 tensor that READ_VARIABLE fills before the
  variable's first ASSIGN_VARIABLE}, i.e. its value at the start of a step."""
  model = _model(tflite_bytes)
  sg = model.Subgraphs(0)
  handles, readouts, assigned = {}, {}, set()
  for oi in range(sg.OperatorsLength()):
    op = sg.Operators(oi)
    code = model.OperatorCodes(op.OpcodeIndex())
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if builtin == schema.BuiltinOperator.VAR_HANDLE:
      options = schema.VarHandleOptions()
      table = op.BuiltinOptions()
      options.Init(table.Bytes, table.Pos)
      handles[int(op.Outputs(0))] = options.SharedName().decode()
    elif builtin == schema.BuiltinOperator.READ_VARIABLE:
      name = handles.get(int(op.Inputs(0)))
      if name is not None and name not in assigned:
        readouts.setdefault(name, int(op.Outputs(0)))
    elif builtin == schema.BuiltinOperator.ASSIGN_VARIABLE:
      name = handles.get(int(op.Inputs(0)))
      if name is not None:
        assigned.add(name)
  return dict(sorted(readouts.items()))


def total_tensor_bytes(tflite_bytes: bytes) -> int:
  """Bytes of all subgraph-0 tensors, each counted once (no reuse)."""
  sg = _model(tflite_bytes).Subgraphs(0)
  total = 0
  for i in range(sg.TensorsLength()):
    t = sg.Tensors(i)
    count = int(np.prod(t.ShapeAsNumpy())) if t.ShapeLength() else 1
    total += count * _BYTES.get(t.Type(), 8)
  return total


def with_extra_outputs(tflite_bytes: bytes, tensor_indices) -> bytes:
  """A copy whose subgraph 0 also outputs ``tensor_indices`` (appended after
  the existing outputs, in order). Outputs are never reused by TFLM's memory
  planner, so their values can be read after an invoke."""
  from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=import-outside-toplevel
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
  sg = model.subgraphs[0]
  sg.outputs = list(sg.outputs) + [int(i) for i in tensor_indices]
  return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
