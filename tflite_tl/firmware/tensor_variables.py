"""Trained parameters that live in variable tensors (the kernel flavor).

A kernel-flavor train graph keeps every trained parameter, and the int8/int32
copies its int8 forward reads, in subgraph-0 tensors marked ``is_variable``:
TFLM gives each a persistent buffer (zero-filled), the update kernels write
it in place, and the tensor's flatbuffer buffer holds its exported value,
which the trainer copies in after ``AllocateTensors``. The predict graph has
tensors of the same names, constants where it can (their exported value
in flash, no arena: ``Emitter.read_only_parameters``) and variables where
a kernel might cache a constant; on the board they are pointed at the train
model's buffers, so predictions read what training writes, with no copy.

Read straight from the flatbuffer (no metadata needed): the same rule the
native TFLM runner applies (``tflite_tl/tflm/csrc/tl_tflm_runner.cc``).
"""
import dataclasses
from typing import Dict, Tuple

import numpy as np

from tflite_tl.flatbuffer.reader import TYPE_BYTES
from tflite_tl.flatbuffer.reader import TYPE_NAMES
from tflite_tl.flatbuffer.reader import VariableInfo
from tflite_tl.flatbuffer.reader import root


@dataclasses.dataclass(frozen=True)
class TensorVariable:
  """One variable tensor of the train model, and its predict-model twin."""
  info: VariableInfo  # container "", shared_name = the tensor's name
  train_tensor: int   # index in the train model's subgraph 0
  predict_tensor: int  # same-named tensor of the predict model, or -1


def _variables(tflite_bytes: bytes) -> Dict[str, Tuple[int, VariableInfo]]:
  model = root(tflite_bytes)
  sg = model.Subgraphs(0)
  found = {}
  for i in range(sg.TensorsLength()):
    t = sg.Tensors(i)
    if not t.IsVariable():
      continue
    name = t.Name().decode("utf-8")
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    dtype = TYPE_NAMES[t.Type()]
    nbytes = int(np.prod(shape, dtype=np.int64)) * TYPE_BYTES[dtype]
    buffer = t.Buffer()
    data = model.Buffers(buffer).DataLength() if buffer > 0 else 0
    if data != nbytes:
      raise ValueError(
          f"Variable tensor '{name}' has {data} bytes of exported value for "
          f"{nbytes} bytes of tensor, so the board could not reset it; "
          "re-lower the model (tflite_tl.lower.lower_model).")
    if name in found:
      raise ValueError(f"Two variable tensors are named '{name}'.")
    found[name] = (i, VariableInfo(container="", shared_name=name,
                                   shape=shape, dtype=dtype,
                                   initial_buffer=int(buffer)))
  return found


def tensor_variables(train_tflite: bytes, predict_tflite: bytes
                     ) -> Tuple[TensorVariable, ...]:
  """Every variable tensor of the train model, in tensor order (the save
  order), with the predict model's tensor of the same name.

  Raises ValueError if a predict-model variable tensor has no train-model
  tensor of the same name, type and shape: it would never see training.
  """
  train = _variables(train_tflite)
  predict = _variables(predict_tflite)
  for name, (_, info) in predict.items():
    twin = train.get(name)
    if twin is None or (twin[1].shape, twin[1].dtype) != (info.shape,
                                                          info.dtype):
      raise ValueError(
          f"Predict-model variable tensor '{name}' has no train-model "
          "variable tensor of the same name, type and shape; both models "
          "must come from the same lowering (tflite_tl.lower.lower_model).")
  constants = _constants(predict_tflite)
  twins = {}
  for name, (_, info) in train.items():
    if name in predict:
      twins[name] = predict[name][0]
    elif name in constants:
      index, shape, dtype = constants[name]
      if (shape, dtype) != (info.shape, info.dtype):
        raise ValueError(
            f"Predict-model tensor '{name}' is {dtype}{list(shape)}, its "
            f"train-model variable {info.dtype}{list(info.shape)}; both "
            "models must come from the same lowering "
            "(tflite_tl.lower.lower_model).")
      twins[name] = index
  return tuple(TensorVariable(info, index, twins.get(name, -1))
               for name, (index, info) in sorted(train.items(),
                                                 key=lambda kv: kv[1][0]))


def _constants(tflite_bytes: bytes) -> Dict[str, Tuple[int, tuple, str]]:
  """{name: (index, shape, dtype)} of subgraph 0's constant tensors."""
  model = root(tflite_bytes)
  sg = model.Subgraphs(0)
  found = {}
  for i in range(sg.TensorsLength()):
    t = sg.Tensors(i)
    buffer = t.Buffer()
    if t.IsVariable() or buffer <= 0 or not model.Buffers(buffer).DataLength():
      continue
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    found.setdefault(t.Name().decode("utf-8"),
                     (i, shape, TYPE_NAMES[t.Type()]))
  return found


def has_variable_tensors(tflite_bytes: bytes) -> bool:
  sg = root(tflite_bytes).Subgraphs(0)
  return any(sg.Tensors(i).IsVariable() for i in range(sg.TensorsLength()))
