"""What a .tflite holds, read from its flatbuffer: ops, I/O tensors, variables.

The one reader of the package: the lowering's builtin check, the TFLM runner,
parameter read-back and the firmware generator all read models through it,
so they never disagree on what a model contains. It uses the schema module
of the ``tflite_micro`` wheel (a superset of TensorFlow's, and importable
without TensorFlow).

Resource variables are identified the way TFLM identifies them: by the
(container, shared_name) pair of their VAR_HANDLE op. Their shape and type
come from the value assigned to them (ASSIGN_VARIABLE), since a resource
tensor carries none. A lowered model gives each variable its initial value
in the init subgraph (run once by CALL_ONCE): ``ASSIGN_VARIABLE(handle,
<constant>)``; that constant's buffer holds the exported value.
"""
import collections
import dataclasses
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

IDENTIFIER = b"TFL3"

_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items()
             if not k.startswith("_")}
TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items()
              if not k.startswith("_")}
TYPE_BYTES = {"FLOAT32": 4, "INT32": 4, "INT64": 8, "INT8": 1, "UINT8": 1,
              "INT16": 2, "BOOL": 1, "FLOAT16": 2, "FLOAT64": 8}
NUMPY_TYPES = {"FLOAT32": np.float32, "INT32": np.int32, "INT8": np.int8,
               "UINT8": np.uint8, "INT16": np.int16, "INT64": np.int64,
               "BOOL": np.bool_}
# Bytes counted for a tensor of any other type (e.g. RESOURCE) when bounding
# an arena: generous on purpose.
_OTHER_TYPE_BYTES = 8


def check(tflite_bytes: bytes) -> None:
  """Raises ValueError unless ``tflite_bytes`` is a .tflite flatbuffer."""
  if len(tflite_bytes) < 8 or bytes(tflite_bytes[4:8]) != IDENTIFIER:
    raise ValueError("Not a .tflite flatbuffer (missing the 'TFL3' "
                     "identifier).")


def root(tflite_bytes: bytes):
  """The schema's ``Model`` table of ``tflite_bytes`` (checked)."""
  check(tflite_bytes)
  return schema.Model.GetRootAs(tflite_bytes, 0)


@dataclasses.dataclass(frozen=True)
class TensorInfo:
  """A tensor of subgraph 0; ``scale``/``zero_point`` when per-tensor
  quantized."""
  name: str
  shape: Tuple[int, ...]
  dtype: str
  scale: Optional[float] = None
  zero_point: Optional[int] = None
  index: int = -1

  @property
  def num_bytes(self) -> int:
    return int(np.prod(self.shape, dtype=np.int64)) * TYPE_BYTES[self.dtype]

  @property
  def numpy_dtype(self):
    if self.dtype not in NUMPY_TYPES:
      raise ValueError(f"Tensor {self.name!r} has type {self.dtype}, which "
                       "has no numpy counterpart here.")
    return NUMPY_TYPES[self.dtype]


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
    return int(np.prod(self.shape, dtype=np.int64)) * TYPE_BYTES[self.dtype]

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


def _op_name(model, op) -> str:
  code = model.OperatorCodes(op.OpcodeIndex())
  builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
  name = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
  if name == "CUSTOM":
    custom = code.CustomCode()
    custom = custom.decode() if custom else "?"
    name = (f"FLEX:{custom[4:]}" if custom.startswith("Flex")
            else f"CUSTOM:{custom}")
  return name


def _ops(model, subgraph: int) -> Iterator[Tuple[str, object]]:
  sg = model.Subgraphs(subgraph)
  for i in range(sg.OperatorsLength()):
    op = sg.Operators(i)
    yield _op_name(model, op), op


def op_counts(tflite_bytes: bytes, subgraph: Optional[int] = None
              ) -> Dict[str, int]:
  """{operator name: count} over all subgraphs (or one), sorted by name.

  Custom ops appear as ``CUSTOM:<name>``, Flex ops as ``FLEX:<TF op>``.
  Every subgraph counts by default: the CALL_ONCE init subgraph of a
  training model has ops of its own (VAR_HANDLE, ASSIGN_VARIABLE).
  """
  model = root(tflite_bytes)
  subgraphs = (range(model.SubgraphsLength()) if subgraph is None
               else [subgraph])
  counts = collections.Counter(
      name for s in subgraphs for name, _ in _ops(model, s))
  return dict(sorted(counts.items()))


def op_input_shapes(tflite_bytes: bytes, op_name: str,
                    subgraph: int = 0) -> List[Tuple[Tuple[int, ...], ...]]:
  """Input shapes of every ``op_name`` op of ``subgraph``, in op order."""
  model = root(tflite_bytes)
  sg = model.Subgraphs(subgraph)
  found = []
  for name, op in _ops(model, subgraph):
    if name == op_name:
      found.append(tuple(
          _tensor(sg, op.Inputs(i)).shape if op.Inputs(i) >= 0 else ()
          for i in range(op.InputsLength())))
  return found


def op_inputs(tflite_bytes: bytes, op_name: str,
              subgraph: int = 0) -> List[Tuple[int, ...]]:
  """Input tensor indices of every ``op_name`` op of ``subgraph``, in op
  order (-1: an omitted optional input)."""
  model = root(tflite_bytes)
  return [tuple(int(op.Inputs(i)) for i in range(op.InputsLength()))
          for name, op in _ops(model, subgraph) if name == op_name]


def op_outputs(tflite_bytes: bytes, op_name: str,
               subgraph: int = 0) -> List[Tuple[int, ...]]:
  """Output tensor indices of every ``op_name`` op of ``subgraph``, in op
  order (an op with no outputs: ())."""
  model = root(tflite_bytes)
  return [tuple(int(op.Outputs(i)) for i in range(op.OutputsLength()))
          for name, op in _ops(model, subgraph) if name == op_name]


def _tensor(sg, index: int) -> TensorInfo:
  t = sg.Tensors(index)
  q = t.Quantization()
  scale = zero_point = None
  if q is not None and q.ScaleLength() == 1:
    scale = float(q.Scale(0))
    zero_point = int(q.ZeroPoint(0))
  return TensorInfo(name=t.Name().decode("utf-8"),
                    shape=tuple(int(d) for d in t.ShapeAsNumpy())
                    if t.ShapeLength() else (),
                    dtype=TYPE_NAMES[t.Type()], scale=scale,
                    zero_point=zero_point, index=int(index))


def inputs(tflite_bytes: bytes) -> Tuple[TensorInfo, ...]:
  """Subgraph 0's inputs in interpreter order."""
  sg = root(tflite_bytes).Subgraphs(0)
  return tuple(_tensor(sg, sg.Inputs(i)) for i in range(sg.InputsLength()))


def outputs(tflite_bytes: bytes) -> Tuple[TensorInfo, ...]:
  """Subgraph 0's outputs in interpreter order."""
  sg = root(tflite_bytes).Subgraphs(0)
  return tuple(_tensor(sg, sg.Outputs(i)) for i in range(sg.OutputsLength()))


def _handle_key(op) -> Tuple[str, str]:
  options = schema.VarHandleOptions()
  table = op.BuiltinOptions()
  options.Init(table.Bytes, table.Pos)
  return ((options.Container() or b"").decode("utf-8"),
          (options.SharedName() or b"").decode("utf-8"))


@dataclasses.dataclass(frozen=True)
class Assignment:
  """An ASSIGN_VARIABLE: which variable, where, and the value tensor."""
  key: Tuple[str, str]
  subgraph: int
  op_index: int
  value: TensorInfo
  buffer: int
  constant: bool


def assignments(model) -> List[Assignment]:
  """Every ASSIGN_VARIABLE of a known handle, in subgraph and op order."""
  found = []
  for s in range(model.SubgraphsLength()):
    sg = model.Subgraphs(s)
    handles: Dict[int, Tuple[str, str]] = {}
    for o, (kind, op) in enumerate(_ops(model, s)):
      if kind == "VAR_HANDLE":
        handles[op.Outputs(0)] = _handle_key(op)
      elif kind == "ASSIGN_VARIABLE" and op.Inputs(0) in handles:
        value = _tensor(sg, op.Inputs(1))
        buffer = sg.Tensors(op.Inputs(1)).Buffer()
        data = model.Buffers(buffer)
        constant = data is not None and data.DataLength() == value.num_bytes
        found.append(Assignment(handles[op.Inputs(0)], s, o, value, buffer,
                                 constant))
  return found


def variables(tflite_bytes: bytes) -> Tuple[VariableInfo, ...]:
  """Every resource variable, in first-use order, with its initial buffer."""
  found: Dict[Tuple[str, str], VariableInfo] = {}
  for a in assignments(root(tflite_bytes)):
    # The train step assigns computed values; the init subgraph assigns the
    # constant initial value, which is the one to record.
    if a.key not in found or (a.constant and found[a.key].initial_buffer < 0):
      found[a.key] = VariableInfo(a.key[0], a.key[1], a.value.shape,
                                  a.value.dtype,
                                  a.buffer if a.constant else -1)
  return tuple(found.values())


def model_info(tflite_bytes: bytes) -> ModelInfo:
  """Subgraph 0's inputs/outputs and every resource variable."""
  return ModelInfo(inputs=inputs(tflite_bytes), outputs=outputs(tflite_bytes),
                   variables=variables(tflite_bytes),
                   size_bytes=len(tflite_bytes))


def initial_assignments(model) -> Dict[str, Assignment]:
  """{variable shared_name: the first ASSIGN_VARIABLE of a constant}."""
  found: Dict[str, Assignment] = {}
  for a in assignments(model):
    if a.constant:
      found.setdefault(a.key[1], a)
  return found


def variable_names(tflite_bytes: bytes) -> List[str]:
  """Names of the variables whose initial values the model stores."""
  return sorted(initial_assignments(root(tflite_bytes)))


def initial_values(tflite_bytes: bytes) -> Dict[str, np.ndarray]:
  """{variable name: initial value} of every resource variable, by name."""
  model = root(tflite_bytes)
  values = {}
  for name, a in sorted(initial_assignments(model).items()):
    if a.value.dtype not in ("FLOAT32", "INT32", "INT8"):
      raise ValueError(f"Variable tensor {a.value.name!r} has unsupported "
                       f"type {a.value.dtype}.")
    data = model.Buffers(a.buffer).DataAsNumpy().tobytes()
    values[name] = np.frombuffer(data, a.value.numpy_dtype).reshape(
        a.value.shape).copy()
  return values


def variable_readouts(tflite_bytes: bytes) -> Dict[str, int]:
  """{variable name: subgraph-0 tensor that READ_VARIABLE fills before the
  variable's first ASSIGN_VARIABLE}, i.e. its value at the start of a step."""
  model = root(tflite_bytes)
  handles, readouts, assigned = {}, {}, set()
  for kind, op in _ops(model, 0):
    if kind == "VAR_HANDLE":
      handles[int(op.Outputs(0))] = _handle_key(op)[1]
    elif kind == "READ_VARIABLE":
      name = handles.get(int(op.Inputs(0)))
      if name is not None and name not in assigned:
        readouts.setdefault(name, int(op.Outputs(0)))
    elif kind == "ASSIGN_VARIABLE":
      name = handles.get(int(op.Inputs(0)))
      if name is not None:
        assigned.add(name)
  return dict(sorted(readouts.items()))


def total_tensor_bytes(tflite_bytes: bytes) -> int:
  """Bytes of all subgraph-0 tensors, each counted once (no reuse)."""
  sg = root(tflite_bytes).Subgraphs(0)
  total = 0
  for i in range(sg.TensorsLength()):
    t = sg.Tensors(i)
    count = int(np.prod(t.ShapeAsNumpy())) if t.ShapeLength() else 1
    total += count * TYPE_BYTES.get(TYPE_NAMES.get(t.Type()),
                                    _OTHER_TYPE_BYTES)
  return total


def updates_are_guarded(tflite_bytes: bytes, subgraph: int = 0) -> bool:
  """True when every ASSIGN_VARIABLE of ``subgraph`` stores a guarded value.

  That is how a builtin train step skips its own update on a non-finite
  loss: each variable stores ``SELECT_V2(loss is finite, new, old)``, or
  ``old - SELECT_V2(loss is finite, step, 0)`` (a parameter's SGD step). A
  graph lowered without the guard applies every update, finite or not.
  """
  model = root(tflite_bytes)
  producer: Dict[int, Tuple[str, object]] = {}
  stored: List[int] = []
  for kind, op in _ops(model, subgraph):
    for i in range(op.OutputsLength()):
      producer[op.Outputs(i)] = (kind, op)
    if kind == "ASSIGN_VARIABLE":
      stored.append(op.Inputs(1))

  def guarded(tensor: int) -> bool:
    kind, op = producer.get(tensor, (None, None))
    if kind == "SELECT_V2":
      return True
    return kind == "SUB" and producer.get(op.Inputs(1), ("",))[0] == "SELECT_V2"

  return bool(stored) and all(guarded(t) for t in stored)
