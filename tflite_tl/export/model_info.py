"""What the generated C++ must know about a .tflite: I/O tensors and variables.

Resource variables are identified on the board the way TFLM identifies them:
by the (container, shared_name) pair of their VAR_HANDLE op. Their size comes
from the value assigned to them (ASSIGN_VARIABLE), since a resource tensor
itself carries no shape.
"""
import dataclasses
from typing import Dict, List, Optional, Tuple

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

_TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items()
               if not k.startswith("_")}
_TYPE_BYTES = {"FLOAT32": 4, "INT32": 4, "INT64": 8, "INT8": 1, "UINT8": 1,
               "INT16": 2, "BOOL": 1, "FLOAT16": 2, "FLOAT64": 8}


@dataclasses.dataclass(frozen=True)
class TensorInfo:
  name: str
  shape: Tuple[int, ...]
  dtype: str
  scale: Optional[float] = None
  zero_point: Optional[int] = None

  @property
  def num_bytes(self) -> int:
    return int(np.prod(self.shape, dtype=np.int64)) * _TYPE_BYTES[self.dtype]

  def to_dict(self) -> dict:
    return dataclasses.asdict(self) | {"shape": list(self.shape)}


@dataclasses.dataclass(frozen=True)
class VariableInfo:
  """A resource variable; ``initial_buffer`` indexes the model's buffers.

  The initial value is the constant the init subgraph assigns (-1 when it is
  not a constant).
  """
  container: str
  shared_name: str
  shape: Tuple[int, ...]
  dtype: str
  initial_buffer: int = -1

  @property
  def num_bytes(self) -> int:
    return int(np.prod(self.shape, dtype=np.int64)) * _TYPE_BYTES[self.dtype]

  def to_dict(self) -> dict:
    return dataclasses.asdict(self) | {"shape": list(self.shape),
                                       "bytes": self.num_bytes}


@dataclasses.dataclass(frozen=True)
class ModelInfo:
  inputs: Tuple[TensorInfo, ...]
  outputs: Tuple[TensorInfo, ...]
  variables: Tuple[VariableInfo, ...]
  size_bytes: int

  @property
  def variable_bytes(self) -> int:
    return sum(v.num_bytes for v in self.variables)


def _tensor(sub, index: int) -> TensorInfo:
  t = sub.Tensors(index)
  q = t.Quantization()
  scale = zero_point = None
  if q is not None and q.ScaleLength() == 1:
    scale = float(q.Scale(0))
    zero_point = int(q.ZeroPoint(0))
  return TensorInfo(name=t.Name().decode("utf-8"),
                    shape=tuple(int(d) for d in t.ShapeAsNumpy())
                    if t.ShapeLength() else (),
                    dtype=_TYPE_NAMES[t.Type()], scale=scale,
                    zero_point=zero_point)


def _op_names(model) -> List[str]:
  names = {v: k for k, v in vars(schema.BuiltinOperator).items()
           if not k.startswith("_")}
  out = []
  for i in range(model.OperatorCodesLength()):
    c = model.OperatorCodes(i)
    out.append(names.get(max(c.BuiltinCode(), c.DeprecatedBuiltinCode()), ""))
  return out


def model_info(tflite_bytes: bytes) -> ModelInfo:
  """Subgraph 0's inputs/outputs and every resource variable, in first-use order."""
  if len(tflite_bytes) < 8 or tflite_bytes[4:8] != b"TFL3":
    raise ValueError("Not a .tflite flatbuffer (missing the 'TFL3' identifier).")
  model = schema.Model.GetRootAs(tflite_bytes, 0)
  ops = _op_names(model)
  main = model.Subgraphs(0)
  inputs = tuple(_tensor(main, main.Inputs(i)) for i in range(main.InputsLength()))
  outputs = tuple(_tensor(main, main.Outputs(i))
                  for i in range(main.OutputsLength()))
  variables: Dict[Tuple[str, str], VariableInfo] = {}
  for s in range(model.SubgraphsLength()):
    sub = model.Subgraphs(s)
    handles: Dict[int, Tuple[str, str]] = {}
    for o in range(sub.OperatorsLength()):
      op = sub.Operators(o)
      kind = ops[op.OpcodeIndex()]
      if kind == "VAR_HANDLE":
        opts = schema.VarHandleOptions()
        table = op.BuiltinOptions()
        opts.Init(table.Bytes, table.Pos)
        key = ((opts.Container() or b"").decode("utf-8"),
               (opts.SharedName() or b"").decode("utf-8"))
        handles[op.Outputs(0)] = key
      elif kind == "ASSIGN_VARIABLE" and op.Inputs(0) in handles:
        key = handles[op.Inputs(0)]
        value = _tensor(sub, op.Inputs(1))
        buffer = sub.Tensors(op.Inputs(1)).Buffer()
        data = model.Buffers(buffer)
        constant = data is not None and data.DataLength() == value.num_bytes
        # The train step assigns computed values; the init subgraph assigns
        # the constant initial value, which is the one to record.
        if key not in variables or (constant and
                                    variables[key].initial_buffer < 0):
          variables[key] = VariableInfo(key[0], key[1], value.shape,
                                        value.dtype,
                                        buffer if constant else -1)
  return ModelInfo(inputs=inputs, outputs=outputs,
                   variables=tuple(variables.values()),
                   size_bytes=len(tflite_bytes))
