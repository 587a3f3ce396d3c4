"""Trained parameters stored in a kernel-flavor graph's variable tensors.

A variable tensor's buffer holds its initial value (the runtime copies it in
after allocation). ``read_params`` returns the trained parameters by Keras
weight name, in the Keras layout; ``write_params`` rewrites them in a copy of
the model bytes (same sizes, so every other byte and the 16-byte alignment
of the data stay as they are) and recomputes the int8/int32 copies that an
int8 forward pass reads from them. The graph's ``tflite_tl`` metadata lists
the variables.
"""
import json
from typing import Dict, List, Mapping, Optional

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

from tflite_tl.lower.tl import quantization as quant
from tflite_tl.lower.tl.emitter import DERIVED
from tflite_tl.lower.tl.emitter import PARAM
from tflite_tl.lower.tl.emitter import VariableSpec

METADATA_NAME = "tflite_tl"


def metadata(tflite_bytes: bytes) -> Optional[dict]:
  """The graph's ``tflite_tl`` metadata, or None for other models."""
  model = schema.Model.GetRootAsModel(tflite_bytes, 0)
  for i in range(model.MetadataLength()):
    entry = model.Metadata(i)
    if entry.Name() is not None and entry.Name().decode() == METADATA_NAME:
      data = model.Buffers(entry.Buffer()).DataAsNumpy()
      return json.loads(bytes(data).decode())
  return None


def is_tl_graph(tflite_bytes: bytes) -> bool:
  return metadata(tflite_bytes) is not None


def variables(tflite_bytes: bytes) -> List[VariableSpec]:
  info = metadata(tflite_bytes)
  if info is None:
    raise ValueError("Not a kernel-flavor graph (no tflite_tl metadata).")
  def spec(v):
    v = dict(v)
    v["shape"] = tuple(v["shape"])
    for key in ("to_keras", "channels"):
      v[key] = tuple(v[key]) if v.get(key) is not None else None
    return VariableSpec(**v)
  return [spec(v) for v in info["variables"]]


def _buffer_span(model, tensor_index: int):
  tensor = model.Subgraphs(0).Tensors(tensor_index)
  buffer = model.Buffers(tensor.Buffer())
  offset = buffer._tab.Offset(4)  # pylint: disable=protected-access  (Buffer.data)
  if not offset:
    raise ValueError(f"Variable tensor {tensor.Name().decode()!r} has no "
                     "initial value in the model.")
  start = buffer._tab.Vector(offset)  # pylint: disable=protected-access
  length = buffer._tab.VectorLen(offset)  # pylint: disable=protected-access
  return start, length


def _to_keras(value: np.ndarray, spec: VariableSpec) -> np.ndarray:
  if spec.channels is not None:
    value = np.take(value, list(spec.channels), axis=spec.channel_axis)
  return np.transpose(value, spec.to_keras) if spec.to_keras else value


def _from_keras(value: np.ndarray, spec: VariableSpec,
                current: np.ndarray) -> np.ndarray:
  """The tensor's new content for a Keras-layout parameter value (``current``
  supplies the untouched slices of a channel-sparse kernel)."""
  if spec.to_keras:
    value = np.transpose(value, np.argsort(spec.to_keras))
  if spec.channels is None:
    return value
  full = np.array(current, copy=True)
  index = [slice(None)] * full.ndim
  index[spec.channel_axis] = list(spec.channels)
  full[tuple(index)] = value
  return full


def read_variables(tflite_bytes: bytes) -> Dict[str, np.ndarray]:
  """{variable tensor name: value} in the tensors' own (TFLite) layout."""
  model = schema.Model.GetRootAsModel(tflite_bytes, 0)
  out = {}
  for spec in variables(tflite_bytes):
    start, length = _buffer_span(model, spec.tensor)
    out[spec.name] = np.frombuffer(
        tflite_bytes[start:start + length], np.dtype(spec.dtype)).reshape(
            spec.shape).copy()
  return out


def read_params(tflite_bytes: bytes) -> Dict[str, np.ndarray]:
  """{Keras weight name: value (Keras layout)} of the trained parameters."""
  raw = read_variables(tflite_bytes)
  return {s.name: _to_keras(raw[s.name], s)
          for s in variables(tflite_bytes) if s.role == PARAM}


def params_from_variables(tflite_bytes: bytes,
                          values: Mapping[str, np.ndarray]
                          ) -> Dict[str, np.ndarray]:
  """Keras-layout parameters from variable values read off a runtime."""
  return {s.name: _to_keras(np.asarray(values[s.name]).reshape(s.shape), s)
          for s in variables(tflite_bytes) if s.role == PARAM
          and s.name in values}


def write_params(tflite_bytes: bytes,
                 params: Mapping[str, np.ndarray]) -> bytes:
  """A copy of the model whose parameters start at ``params`` (Keras
  layout, by weight name); their int8/int32 copies follow."""
  specs = variables(tflite_bytes)
  by_name = {s.name: s for s in specs if s.role == PARAM}
  unknown = sorted(set(params) - set(by_name))
  if unknown:
    raise KeyError(f"Not trained parameters of this model: {unknown}.")
  model = schema.Model.GetRootAsModel(tflite_bytes, 0)
  out = bytearray(tflite_bytes)
  current = read_variables(tflite_bytes)
  new_values = {}
  for name, value in params.items():
    spec = by_name[name]
    array = _from_keras(np.asarray(value, np.float32), spec, current[name])
    if tuple(array.shape) != spec.shape:
      raise ValueError(f"Parameter {name!r} has shape {tuple(array.shape)} "
                       f"in the model's layout, got {tuple(array.shape)}.")
    new_values[name] = array
    _write(out, model, spec, array)
  for spec in specs:
    if spec.role == DERIVED and spec.parameter in new_values:
      _write(out, model, spec, _derive(model, spec, new_values[spec.parameter],
                                       current[spec.name]))
  return bytes(out)


def _write(out: bytearray, model, spec: VariableSpec, array: np.ndarray):
  start, length = _buffer_span(model, spec.tensor)
  data = np.ascontiguousarray(array, np.dtype(spec.dtype)).tobytes()
  if len(data) != length:
    raise ValueError(f"Variable {spec.name!r}: {len(data)} bytes for a "
                     f"{length}-byte buffer.")
  out[start:start + length] = data


def _derive(model, spec: VariableSpec, master: np.ndarray,
            current: np.ndarray) -> np.ndarray:
  """The int32 bias (or int8 kernel) an int8 forward reads, from its float
  master and the scales in the tensor's quantization. A master of some
  kernel slices only re-quantizes those slices of the current kernel."""
  tensor = model.Subgraphs(0).Tensors(spec.tensor)
  scales = tensor.Quantization().ScaleAsNumpy()
  if spec.dtype == "int32":
    return quant.quantize_bias(master, scales)
  axis = tensor.Quantization().QuantizedDimension()
  if spec.channels is None:
    return quant.quantize_weights(master, scales, axis)
  full = np.array(current, copy=True)
  index = [slice(None)] * full.ndim
  index[spec.channel_axis] = list(spec.channels)
  if spec.channel_axis == axis:  # the slices are whole channels
    part = quant.quantize_weights(master, scales[list(spec.channels)], axis)
  else:
    part = quant.quantize_weights(master, scales, axis)
  full[tuple(index)] = part
  return full
