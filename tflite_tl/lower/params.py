"""Reading and writing the trained parameters stored in a lowered .tflite.

A lowered model keeps each trained parameter as a resource variable. Its
value on the device's first invoke is set by the init subgraph (run once by
CALL_ONCE): ``VAR_HANDLE(shared_name=<name>)`` then ``ASSIGN_VARIABLE(handle,
<constant tensor>)``. The constant's buffer therefore holds the parameter;
``read_params`` returns those buffers by variable name and ``write_params``
replaces them (first giving the variable its own constant tensor and buffer
when the converter shared one between equal initial values, e.g. zero
biases). The variable name is the Keras
weight name without ``:0`` (e.g. ``block1_dw/depthwise_kernel``); momentum
buffers are ``<name>/momentum``.
"""
import copy
from typing import Dict, Mapping

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

_NUMPY_TYPES = {
    schema.TensorType.FLOAT32: np.float32,
    schema.TensorType.INT32: np.int32,
    schema.TensorType.INT8: np.int8,
}


def _initial_assignments(model):
  """{variable name: (subgraph, tensor index, op index)} of the ASSIGN_VARIABLE
  that gives each variable its initial value."""
  found = {}
  for sg_index, sg in enumerate(model.subgraphs):
    handles = {}
    for op_index, op in enumerate(sg.operators):
      code = model.operatorCodes[op.opcodeIndex]
      builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
      if builtin == schema.BuiltinOperator.VAR_HANDLE:
        handles[op.outputs[0]] = op.builtinOptions.sharedName.decode()
      elif builtin == schema.BuiltinOperator.ASSIGN_VARIABLE:
        handle, value = op.inputs[0], op.inputs[1]
        tensor = sg.tensors[value]
        if handle in handles and model.buffers[tensor.buffer].data is not None:
          found.setdefault(handles[handle], (sg_index, value, op_index))
  return found


def _tensor_array(model, sg_index, tensor_index) -> np.ndarray:
  tensor = model.subgraphs[sg_index].tensors[tensor_index]
  dtype = _NUMPY_TYPES.get(tensor.type)
  if dtype is None:
    raise ValueError(f"Variable tensor {tensor.name!r} has unsupported type "
                     f"{tensor.type}.")
  data = np.asarray(model.buffers[tensor.buffer].data, np.uint8).tobytes()
  shape = [] if tensor.shape is None else list(tensor.shape)
  return np.frombuffer(data, dtype).reshape(shape).copy()


def _shared(model, sg_index, t_index) -> bool:
  """Whether the constant tensor or its buffer has any other user."""
  buffer = model.subgraphs[sg_index].tensors[t_index].buffer
  tensor_uses = sum(
      list(op.inputs).count(t_index)
      for op in model.subgraphs[sg_index].operators if op.inputs is not None)
  buffer_uses = sum(1 for sg in model.subgraphs for t in sg.tensors
                    if t.buffer == buffer)
  return tensor_uses > 1 or buffer_uses > 1


def variable_names(tflite_bytes: bytes):
  """Names of the variables whose initial values the model stores."""
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
  return sorted(_initial_assignments(model))


def read_params(tflite_bytes: bytes) -> Dict[str, np.ndarray]:
  """{variable name: initial value} of every resource variable in the model."""
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
  return {name: _tensor_array(model, sg, t)
          for name, (sg, t, _) in sorted(_initial_assignments(model).items())}


def write_params(tflite_bytes: bytes,
                 params: Mapping[str, np.ndarray]) -> bytes:
  """A copy of the model whose variables start at ``params``.

  Every name must be a variable of the model and every array must keep that
  variable's shape; variables not named keep their values.
  """
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
  assignments = _initial_assignments(model)
  unknown = sorted(set(params) - set(assignments))
  if unknown:
    raise KeyError(f"Not variables of this model: {unknown}. "
                   f"Variables: {sorted(assignments)}.")
  for name in sorted(params):
    sg_index, t_index, op_index = assignments[name]
    old = _tensor_array(model, sg_index, t_index)
    new = np.asarray(params[name])
    if tuple(new.shape) != tuple(old.shape):
      raise ValueError(f"Parameter {name!r} has shape {tuple(old.shape)}; "
                       f"got {tuple(new.shape)}.")
    sg = model.subgraphs[sg_index]
    if _shared(model, sg_index, t_index):
      # The converter deduplicates equal constants (tensor and buffer): give
      # this variable a private copy before changing its value.
      tensor = copy.deepcopy(sg.tensors[t_index])
      tensor.name = (tensor.name or b"") + b"/" + name.encode()
      model.buffers.append(schema.BufferT())
      tensor.buffer = len(model.buffers) - 1
      sg.tensors.append(tensor)
      t_index = len(sg.tensors) - 1
      sg.operators[op_index].inputs[1] = t_index
    tensor = sg.tensors[t_index]
    model.buffers[tensor.buffer].data = np.frombuffer(
        new.astype(old.dtype).tobytes(), np.uint8).copy()
  return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
