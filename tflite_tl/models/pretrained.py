"""Shipped pretrained backbones: load, describe, and write them.

Each backbone ``NAME`` is two files in ``tflite_tl/models/pretrained/``:

- ``NAME.npz``: every weight of the model (BatchNorm moving statistics
  included), keyed ``<layer name>/<weight name>``. The archive is written with
  fixed zip timestamps so the same weights always give the same bytes.
- ``NAME.json``: the record: registry model and builder kwargs, dataset,
  resolution, channels, the training recipe and the command that produced it,
  test accuracy on the full test set and on a fixed slice, parameter count,
  and the sha256 of the ``.npz`` file, verified on every load.
"""
import hashlib
import io
import json
import os
import zipfile
from typing import Any, Dict, List, Optional

import numpy as np

from tflite_tl import atomic
from tflite_tl._compat import keras
from tflite_tl.models.registry import get_model

PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "pretrained")
WEIGHTS_SUFFIX = ".npz"
RECORD_SUFFIX = ".json"
# Any fixed date works; 1980-01-01 is the earliest a zip entry can carry.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class PretrainedChecksumError(ValueError):
  """A weights file does not match the sha256 recorded next to it."""


def list_pretrained(directory: Optional[str] = None) -> List[str]:
  """Names of the backbones with both a record and a weights file."""
  directory = directory or PRETRAINED_DIR
  if not os.path.isdir(directory):
    return []
  names = []
  for entry in sorted(os.listdir(directory)):
    if entry.endswith(RECORD_SUFFIX):
      name = entry[:-len(RECORD_SUFFIX)]
      if os.path.exists(os.path.join(directory, name + WEIGHTS_SUFFIX)):
        names.append(name)
  return names


def _paths(name: str, directory: Optional[str]):
  directory = directory or PRETRAINED_DIR
  return (os.path.join(directory, name + RECORD_SUFFIX),
          os.path.join(directory, name + WEIGHTS_SUFFIX))


def _unknown(name: str, directory: Optional[str], missing: str) -> ValueError:
  available = list_pretrained(directory) or ["none"]
  return ValueError(
      f"No pretrained backbone {name!r} ({missing} is missing). Available: "
      f"{', '.join(available)}. Make one with `python -m benchmarks.pretrain "
      f"--model=MODEL --name={name}`.")


def pretrained_info(name: str, directory: Optional[str] = None
                    ) -> Dict[str, Any]:
  """The JSON record of backbone ``name`` (recipe, accuracies, checksum)."""
  if not isinstance(name, str) or not name:
    raise ValueError(f"Pretrained backbone name must be a non-empty string, "
                     f"got {name!r}. Available: "
                     f"{', '.join(list_pretrained(directory)) or 'none'}.")
  record_path, _ = _paths(name, directory)
  if not os.path.exists(record_path):
    raise _unknown(name, directory, record_path)
  with open(record_path, encoding="utf-8") as f:
    return json.load(f)


def sha256_of(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


def _weight_key(layer, weight) -> str:
  # Weight names look like "block1_dw/depthwise_kernel:0"; keep the last part
  # so keys do not depend on name scopes.
  short = weight.name.split("/")[-1].split(":")[0]
  return f"{layer.name}/{short}"


def weights_to_arrays(model: keras.Model) -> Dict[str, np.ndarray]:
  """Every weight of ``model`` keyed ``<layer>/<weight>``, in layer order."""
  arrays = {}
  for layer in model.layers:
    for weight in layer.weights:
      key = _weight_key(layer, weight)
      if key in arrays:
        raise ValueError(f"Model {model.name!r} has two weights named {key!r}; "
                         "give its layers unique names.")
      arrays[key] = np.asarray(weight.numpy())
  return arrays


def save_weights(model: keras.Model, path: str) -> None:
  """Writes all weights as a byte-deterministic .npz archive."""
  arrays = weights_to_arrays(model)
  with atomic.replacing(path) as tmp, zipfile.ZipFile(
      tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
    for key, value in arrays.items():
      buffer = io.BytesIO()
      np.lib.format.write_array(buffer, np.ascontiguousarray(value),
                                allow_pickle=False)
      info = zipfile.ZipInfo(key + ".npy", date_time=_ZIP_DATE)
      info.compress_type = zipfile.ZIP_DEFLATED
      info.external_attr = 0o644 << 16
      archive.writestr(info, buffer.getvalue())


def load_weights(model: keras.Model, path: str) -> None:
  """Assigns the arrays of a :func:`save_weights` archive to ``model``.

  Raises:
    ValueError: a weight is missing, extra, or has the wrong shape.
  """
  with np.load(path, allow_pickle=False) as archive:
    stored = {key: archive[key] for key in archive.files}
  expected = {}
  for layer in model.layers:
    for weight in layer.weights:
      expected[_weight_key(layer, weight)] = weight
  missing = sorted(set(expected) - set(stored))
  extra = sorted(set(stored) - set(expected))
  if missing or extra:
    raise ValueError(f"Weights file {path} does not fit model {model.name!r}: "
                     f"missing {missing[:5]}, unexpected {extra[:5]}. Was it "
                     "made for other builder arguments?")
  for key, weight in expected.items():
    if tuple(stored[key].shape) != tuple(weight.shape):
      raise ValueError(f"Weights file {path}: {key} has shape "
                       f"{stored[key].shape}, model {model.name!r} expects "
                       f"{tuple(weight.shape)}.")
    weight.assign(stored[key])


def weights_path(name: str, directory: Optional[str] = None) -> str:
  """Path of the weights file of backbone ``name`` (for loading the shipped
  weights into a differently sized copy with :func:`load_weights`)."""
  pretrained_info(name, directory)  # Raises with the list of names if unknown.
  path = _paths(name, directory)[1]
  if not os.path.exists(path):
    raise _unknown(name, directory, path)
  return path


def load_pretrained(name: str, directory: Optional[str] = None,
                    verify_checksum: bool = True,
                    resolution: Optional[int] = None) -> keras.Model:
  """Builds backbone ``name`` and loads its shipped weights.

  Args:
    name: one of :func:`list_pretrained` (e.g. ``"mcunet"``).
    directory: where the files are; the shipped folder by default.
    verify_checksum: compare the weights file with the recorded sha256.
    resolution: input side in pixels; None keeps the one it was trained at.
      Convolutions, normalisation, global pooling and the classifier do not
      depend on the spatial size, so the same weights serve every resolution
      its downsampling supports (as in TinyTL's resolution sweep).

  Returns:
    A fresh keras.Model (logits output) with the pretrained weights.

  Raises:
    ValueError: unknown name or missing files (lists the available names).
    PretrainedChecksumError: the weights file was modified or corrupted.
  """
  record = pretrained_info(name, directory)
  path = weights_path(name, directory)
  if verify_checksum:
    actual = sha256_of(path)
    if actual != record["weights_sha256"]:
      raise PretrainedChecksumError(
          f"Pretrained weights {path} have sha256 {actual}, but "
          f"{name}{RECORD_SUFFIX} records {record['weights_sha256']}. The file "
          "is corrupted or was replaced; restore it from the repository or "
          "re-run the command in the record.")
  model = get_model(record["model"], **record["builder_kwargs"])
  load_weights(model, path)
  native = int(model.input_shape[1])
  if resolution is None or int(resolution) == native:
    return model
  channels = int(model.input_shape[-1])
  try:
    clone = keras.models.clone_model(
        model, input_tensors=keras.Input((resolution, resolution, channels)))
    clone.set_weights(model.get_weights())
  except (ValueError, TypeError) as e:
    raise ValueError(
        f"Backbone {name!r} (trained at {native} px) cannot run at "
        f"{resolution} px: {e}. Use a resolution its downsampling supports "
        "(a multiple of its total stride) or leave resolution unset.") from e
  return clone


def write_pretrained(model: keras.Model, name: str, record: Dict[str, Any],
                     directory: Optional[str] = None) -> Dict[str, Any]:
  """Saves ``model``'s weights and ``record`` (plus size and sha256).

  Returns:
    The record as written.
  """
  directory = directory or PRETRAINED_DIR
  os.makedirs(directory, exist_ok=True)
  record_path, weights_file = _paths(name, directory)
  save_weights(model, weights_file)
  record = dict(record, name=name,
                weights_file=os.path.basename(weights_file),
                weights_bytes=os.path.getsize(weights_file),
                weights_sha256=sha256_of(weights_file))
  atomic.write_file(record_path,
                    json.dumps(record, indent=2, sort_keys=True) + "\n")
  return record
