"""A user's own Keras model from a file: ``.keras``, full-model ``.h5``, or a
SavedModel directory, saved with tf-keras (Keras 2).

``load_model_file(path, resolution=None)`` loads the model and, when a
``resolution`` is asked for and the model is fully convolutional (its
weights do not depend on the input size), rebuilds it at that resolution with
the same weights. A model that is not fully convolutional (e.g. ``Flatten``
before ``Dense``) keeps its own input size; :func:`read_model_file` returns
that decision and a note saying so.

Every failure is a :class:`ModelFileError` whose one-line message names the
file, what is wrong and what is supported: a Keras 3 file, a weights-only
``.h5``, a SavedModel without Keras metadata, a custom or ``Lambda`` layer
tf-keras cannot rebuild, a subclassed model, or a model that is not a CNN
classifier (one ``[batch, H, W, C]`` image input, one ``[batch, classes]``
output, convolutions). Whether every layer can be lowered to TFLM is checked
by the lowering stage (``tflite_tl.lower.check_lowerable``).
"""
import dataclasses
import json
import os
import re
import zipfile
from typing import Optional, Tuple

import h5py
import numpy as np

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.models.pretrained import list_pretrained
from tflite_tl.models.registry import list_models
# Registers tflite-tl's own layers (partial, WSConv2D, HardSwish...) so that
# models saved after a rewrite load back.
from tflite_tl import layers as _tflite_tl_layers  # noqa: F401  pylint: disable=unused-import

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
SUPPORTED_FILES = (
    "a .keras file, a full-model .h5 file or a SavedModel directory saved "
    "by tf-keras (Keras 2: `import tf_keras; model.save(path)`)")
SUPPORTED_MODELS = (
    "a functional or Sequential CNN classifier: one image input "
    "[batch, H, W, C], one [batch, classes] output")


class ModelFileError(ValueError):
  """A model file cannot be used; the message names the file and the fix."""


@dataclasses.dataclass(frozen=True)
class ModelFile:
  """A loaded model file.

  Attributes:
    path: the file or directory as given.
    format: ``"keras"``, ``"h5"`` or ``"saved_model"``.
    model: the tf-keras model (rebuilt at ``resolution`` when ``rebuilt``).
    native_size: (H, W) of the model as saved (None entries if unset).
    size: (H, W) of ``model``.
    rebuilt: the model was rebuilt at a new input size.
    notes: one line each: a requested resolution that was not used (the
      model is not fully convolutional), an input rescaling adapted to
      [0, 1] images.
  """
  path: str
  format: str
  model: keras.Model
  native_size: Tuple[Optional[int], Optional[int]]
  size: Tuple[int, int]
  rebuilt: bool
  notes: Tuple[str, ...] = ()


def is_model_path(value: str) -> bool:
  """True when ``value`` names a model file rather than a zoo or shipped
  model (those names win over a same-named file in the working directory)."""
  if not isinstance(value, str) or not value:
    return False
  if value in list_models() or value in list_pretrained():
    return False
  return (value.lower().endswith(MODEL_SUFFIXES) or os.sep in value
          or os.path.exists(value))


def _error(path: str, what: str) -> ModelFileError:
  return ModelFileError(f"{path}: {what}")


def _one_line(text: str, limit: int = 300) -> str:
  line = " ".join(str(text).split())
  return line if len(line) <= limit else line[:limit - 3] + "..."


def _keras_major(version) -> Optional[int]:
  if isinstance(version, bytes):
    version = version.decode("utf-8", "replace")
  match = re.match(r"\s*(\d+)\.", str(version or ""))
  return int(match.group(1)) if match else None


def _keras3_error(path: str, version: str) -> ModelFileError:
  return _error(path, (
      f"saved by Keras {version} (Keras 3), which tf-keras cannot load "
      f"faithfully; supported: {SUPPORTED_FILES}. Rebuild the model with "
      "tf_keras (e.g. tf_keras.applications) and save it from there."))


def _keras_file_config(path: str) -> dict:
  """The metadata and config of a .keras zip (read only, never edited)."""
  try:
    with zipfile.ZipFile(path) as archive:
      names = set(archive.namelist())
      metadata = (json.loads(archive.read("metadata.json"))
                  if "metadata.json" in names else {})
      config = (json.loads(archive.read("config.json"))
                if "config.json" in names else None)
  except (zipfile.BadZipFile, OSError, ValueError) as e:
    raise _error(path, f"not a readable .keras archive ({_one_line(e)}); "
                 f"supported: {SUPPORTED_FILES}.") from None
  if config is None:
    raise _error(path, "the .keras archive has no config.json; supported: "
                 f"{SUPPORTED_FILES}.")
  return {"keras_version": metadata.get("keras_version"), "config": config}


def _h5_config(path: str) -> dict:
  try:
    with h5py.File(path, "r") as f:
      version = f.attrs.get("keras_version")
      config = f.attrs.get("model_config")
  except OSError as e:
    raise _error(path, f"not a readable HDF5 file ({_one_line(e)}); "
                 f"supported: {SUPPORTED_FILES}.") from None
  if isinstance(version, bytes):
    version = version.decode("utf-8", "replace")
  if config is None:
    raise _error(path, (
        "an .h5 file without a model config (weights only, written by "
        "save_weights); supported: " + SUPPORTED_FILES + ". Save the whole "
        "model with model.save(path)."))
  if isinstance(config, bytes):
    config = config.decode("utf-8")
  try:
    config = json.loads(config)
  except ValueError:
    config = None
  return {"keras_version": version, "config": config}


def _saved_model_config(path: str) -> dict:
  if not os.path.exists(os.path.join(path, "saved_model.pb")):
    raise _error(path, f"a directory without saved_model.pb; supported: "
                 f"{SUPPORTED_FILES}.")
  if not os.path.exists(os.path.join(path, "keras_metadata.pb")):
    raise _error(path, (
        "a SavedModel without Keras metadata (written by tf.saved_model.save "
        "or Keras 3's model.export()), so its layers cannot be rebuilt; "
        f"supported: {SUPPORTED_FILES}."))
  return {"keras_version": None, "config": None}


def _detect(path: str):
  """(format, {keras_version, config}) of ``path``; raises for bad files."""
  if not os.path.exists(path):
    raise _error(path, f"no such file or directory; --model takes a zoo or "
                 f"shipped model name, or {SUPPORTED_FILES}.")
  if os.path.isdir(path):
    return "saved_model", _saved_model_config(path)
  lower = path.lower()
  if lower.endswith(".keras"):
    return "keras", _keras_file_config(path)
  if lower.endswith((".h5", ".hdf5")):
    return "h5", _h5_config(path)
  raise _error(path, f"unknown model file type; supported: {SUPPORTED_FILES}.")


def _layer_named_by_class(config, class_name: str) -> Optional[str]:
  """Name of the first layer of ``class_name`` in a model config."""
  if not isinstance(config, dict):
    return None
  layers = config.get("config", {}).get("layers", [])
  for layer in layers:
    if not isinstance(layer, dict):
      continue
    if layer.get("class_name") == class_name:
      return layer.get("config", {}).get("name")
    inner = _layer_named_by_class(layer, class_name)
    if inner:
      return inner
  return None


# Layer classes tf-keras rebuilds without a registration.
_BUILT_IN_CLASSES = ("Functional", "Sequential", "Model", "InputLayer",
                     "TFOpLambda", "SlicingOpLambda")


def _known_class(layer_config) -> bool:
  cls = layer_config.get("class_name", "")
  registered = layer_config.get("registered_name") or cls
  if cls in _BUILT_IN_CLASSES:
    return True
  if registered == cls and hasattr(keras.layers, cls):
    return True
  return keras.utils.get_registered_object(registered) is not None


def _unknown_layer(config):
  """(name, class) of the first layer tf-keras has no class for, or None."""
  if not isinstance(config, dict):
    return None
  for layer in config.get("config", {}).get("layers", []) or []:
    if not isinstance(layer, dict):
      continue
    if not _known_class(layer):
      cls = layer.get("class_name", "?").split(">")[-1]
      return layer.get("config", {}).get("name"), cls
    inner = _unknown_layer(layer)
    if inner:
      return inner
  return None


def _unknown_layer_error(path: str, name: Optional[str], cls: str):
  where = f"layer '{name}' ({cls})" if name else f"layer class {cls}"
  return _error(path, (
      f"{where} is not a tf-keras layer, so the model cannot be rebuilt; "
      f"supported: {SUPPORTED_MODELS} made of stock tf-keras layers "
      "(docs/models.md lists those the lowering supports). Register the "
      "class with keras.utils.register_keras_serializable before loading "
      "and give it a lowering rule (tflite_tl.lower.register_layer_rule), "
      "or rebuild the model from stock layers."))


def _load_failure(path: str, error: Exception, config) -> ModelFileError:
  text = _one_line(error)
  unknown = re.search(r"Unknown layer: '?([A-Za-z0-9_>.]+)'?", text)
  if unknown:
    cls = unknown.group(1)
    return _unknown_layer_error(path, _layer_named_by_class(config, cls),
                                cls.split(">")[-1])
  if "Lambda" in text and "safe" in text.lower():
    name = _layer_named_by_class(config, "Lambda")
    where = f"layer '{name}' (Lambda)" if name else "a Lambda layer"
    return _error(path, (
        f"{where} holds arbitrary Python code, which tflite-tl cannot lower; "
        f"supported: {SUPPORTED_MODELS} made of stock tf-keras layers. "
        "Replace the Lambda with Keras layers."))
  return _error(path, f"tf-keras could not load it ({text}); supported: "
                f"{SUPPORTED_FILES}.")


def _check_classifier(path: str, model) -> None:
  if not isinstance(model, keras.Model):
    raise _error(path, f"holds a {type(model).__name__}, not a Keras model; "
                 f"supported: {SUPPORTED_MODELS}.")
  if not getattr(model, "_is_graph_network", False):
    raise _error(path, (
        f"holds a subclassed model (class {type(model).__name__}) whose "
        f"graph cannot be inspected; supported: {SUPPORTED_MODELS}. Rebuild "
        "it with keras.Input and layer calls."))
  if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
    shapes = [tuple(t.shape) for t in model.inputs]
    raise _error(path, f"not a CNN classifier: input shapes {shapes}; "
                 f"supported: {SUPPORTED_MODELS}.")
  if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2 or (
      model.outputs[0].shape[-1] or 0) < 2:
    shapes = [tuple(t.shape) for t in model.outputs]
    raise _error(path, f"not a CNN classifier: output shapes {shapes}; "
                 f"supported: {SUPPORTED_MODELS}.")
  if model.inputs[0].dtype != tf.float32:
    raise _error(path, f"input dtype {model.inputs[0].dtype.name}; supported: "
                 "float32 images.")
  if model.inputs[0].shape[-1] is None:
    raise _error(path, "the input has an unknown channel count; give it a "
                 "fixed shape (keras.Input(shape=(H, W, C))).")
  convs = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
  if not any(isinstance(l, convs) for l in _all_layers(model)):
    raise _error(path, f"not a CNN: no Conv2D or DepthwiseConv2D layer; "
                 f"supported: {SUPPORTED_MODELS}.")


def _all_layers(model):
  for layer in model.layers:
    if isinstance(layer, keras.Model):
      yield from _all_layers(layer)
    else:
      yield layer


def _weight_shapes(model):
  return [tuple(w.shape) for w in model.weights]


def _pixel_rescaling(model):
  """The first layer the image meets, if it is a Rescaling that takes 0-255
  pixels (scale 1/255 or 1/127.5, as keras.applications' preprocessing);
  looked for inside a nested model that reads the image directly."""
  readers = [l for l in model.layers
             for n in l._inbound_nodes  # pylint: disable=protected-access
             if any(t is model.inputs[0] for t in n.keras_inputs)]
  if len(readers) != 1:
    return None
  first = readers[0]
  if isinstance(first, keras.Model) and getattr(first, "_is_graph_network",
                                                False):
    return _pixel_rescaling(first)
  if not isinstance(first, keras.layers.Rescaling):
    return None
  scale = np.asarray(first.scale, np.float64)
  if scale.ndim == 0 and any(abs(float(scale) * d - 1.0) < 1e-6
                             for d in (255.0, 127.5)):
    return first
  return None


def _rebuilt(model, size, unit_rescaling):
  """(model rebuilt at ``size`` with ``unit_rescaling`` taking [0, 1]
  inputs, None) or (None, why the size cannot be used)."""
  channels = int(model.inputs[0].shape[-1])

  def clone_layer(layer):
    if isinstance(layer, keras.Model):  # nested: clone it the same way
      return keras.models.clone_model(layer, clone_function=clone_layer)
    config = layer.get_config()
    if layer is unit_rescaling:
      config["scale"] = float(np.float32(layer.scale * 255.0))
    return layer.__class__.from_config(config)

  try:
    clone = keras.models.clone_model(
        model, input_tensors=keras.Input(
            (size[0], size[1], channels),
            name=model.inputs[0].name.split(":")[0]),
        clone_function=clone_layer)
  except (ValueError, TypeError) as e:
    return None, _one_line(e, 160)
  if _weight_shapes(clone) != _weight_shapes(model):
    changed = next(
        (l for l, k in zip(_all_layers(model), _all_layers(clone))
         if [tuple(w.shape) for w in l.weights]
         != [tuple(w.shape) for w in k.weights]), None)
    if changed is not None:
      return None, (f"layer '{changed.name}' ({type(changed).__name__}) has "
                    "weights whose shape depends on the input size")
    return None, "its weight shapes depend on the input size"
  clone.set_weights(model.get_weights())
  return clone, None


def read_model_file(path: str, resolution: Optional[int] = None,
                    unit_range_input: bool = False) -> ModelFile:
  """Loads a tf-keras model file (see the module docstring).

  Args:
    path: ``.keras`` / ``.h5`` file or SavedModel directory.
    resolution: square input side to rebuild the model at; None keeps the
      model's own input size (required when that size is not fixed).
    unit_range_input: when the model's first layer is a Rescaling for 0-255
      pixels (keras.applications' built-in preprocessing: 1/255, or 1/127.5
      and -1), multiply its scale by 255 so that the model takes images in
      [0, 1], tflite-tl's train-step input; the same function of the image.

  Returns:
    A :class:`ModelFile`; ``notes`` say what was changed or not used.

  Raises:
    ModelFileError: the file cannot be used (one-line message naming it).
  """
  path = os.fspath(path)
  file_format, info = _detect(path)
  major = _keras_major(info["keras_version"])
  if major is not None and major >= 3:
    raise _keras3_error(path, info["keras_version"])
  unknown = _unknown_layer(info["config"])
  if unknown:
    raise _unknown_layer_error(path, *unknown)
  try:
    model = keras.models.load_model(path, compile=False)
  except (ValueError, TypeError, KeyError, AttributeError, OSError,
          NotImplementedError, IndexError) as e:
    raise _load_failure(path, e, info["config"]) from None
  _check_classifier(path, model)
  native = (model.inputs[0].shape[1], model.inputs[0].shape[2])
  if resolution is not None:
    if not isinstance(resolution, int) or resolution < 8:
      raise _error(path, f"resolution must be an integer >= 8, got "
                   f"{resolution!r}.")
    wanted = (resolution, resolution)
  else:
    wanted = native
  if None in wanted:
    raise _error(path, f"the model has no fixed input size (input shape "
                 f"{tuple(model.inputs[0].shape)}); pass a resolution "
                 "(--resolution).")
  if min(wanted) < 8:
    raise _error(path, f"the input is {wanted[0]}x{wanted[1]} px; supported "
                 "inputs are at least 8x8 px. Pass a resolution "
                 "(--resolution=32) to rebuild a fully convolutional model "
                 "at that size.")
  rescaling = _pixel_rescaling(model) if unit_range_input else None
  notes = []
  if rescaling is not None:
    notes.append(
        f"{path}: its first layer '{rescaling.name}' rescales 0-255 pixels "
        f"(scale {float(rescaling.scale):.6g}); the scale is multiplied by "
        "255 so that it takes images in [0, 1].")
  if tuple(wanted) == tuple(native) and rescaling is None:
    return ModelFile(path, file_format, model, native, tuple(native), False)
  clone, why = _rebuilt(model, wanted, rescaling)
  if clone is not None:
    return ModelFile(path, file_format, clone, native, tuple(wanted),
                     tuple(wanted) != tuple(native), tuple(notes))
  if None in native:
    raise _error(path, f"cannot be built at {resolution} px ({why}).")
  notes.append(f"{path}: not fully convolutional ({why}), so it keeps its "
               f"own {native[0]}x{native[1]} px input instead of "
               f"{resolution} px.")
  if rescaling is not None:
    clone, _ = _rebuilt(model, native, rescaling)
    model = clone
  return ModelFile(path, file_format, model, native, tuple(native), False,
                   tuple(notes))


def load_model_file(path: str, resolution: Optional[int] = None,
                    unit_range_input: bool = False) -> keras.Model:
  """The tf-keras model in ``path``, rebuilt at ``resolution`` when it is
  fully convolutional (see :func:`read_model_file`, which also says whether
  the resolution was used)."""
  return read_model_file(path, resolution, unit_range_input).model
