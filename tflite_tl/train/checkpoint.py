"""Per-epoch training checkpoints, written atomically, for ``fit(resume=True)``.

Layout of a checkpoint directory::

    epoch-0003/ckpt.index, ckpt.data-*   model variables + optimizer state
    epoch-0003/history.json               History up to that epoch
    LATEST                                 "epoch-0003"

Each epoch is written to a hidden temporary directory that is renamed into
place, and ``LATEST`` is replaced atomically afterwards, so an interrupted run
always leaves the previous complete checkpoint readable. Older epochs are then
deleted.
"""
import json
import os
import shutil
from typing import Optional, Tuple

from tflite_tl import atomic
from tflite_tl._compat import tf
from tflite_tl.train.history import History

LATEST = "LATEST"
_PREFIX = "ckpt"
_HISTORY = "history.json"


def _epoch_dir(epoch: int) -> str:
  return f"epoch-{epoch:04d}"


def _trackable(model, optimizer) -> tf.train.Checkpoint:
  return tf.train.Checkpoint(model=model, optimizer=optimizer)


def save(directory: str, epoch: int, model, optimizer, history: History) -> str:
  """Saves the state after ``epoch`` completed epochs; returns its directory."""
  os.makedirs(directory, exist_ok=True)
  final = os.path.join(directory, _epoch_dir(epoch))
  with atomic.atomic_directory(final) as tmp:
    _trackable(model, optimizer).write(os.path.join(tmp, _PREFIX))
    atomic.write_file(os.path.join(tmp, _HISTORY), history.to_json())
  atomic.write_file(os.path.join(directory, LATEST), _epoch_dir(epoch))
  for entry in os.listdir(directory):
    if entry.startswith("epoch-") and entry != _epoch_dir(epoch):
      shutil.rmtree(os.path.join(directory, entry), ignore_errors=True)
  return final


def latest(directory: str) -> Optional[Tuple[int, str]]:
  """(epoch, path) of the newest complete checkpoint, or None."""
  pointer = os.path.join(directory, LATEST)
  if not os.path.isfile(pointer):
    return None
  with open(pointer) as f:
    name = f.read().strip()
  path = os.path.join(directory, name)
  if not name.startswith("epoch-") or not os.path.isdir(path):
    raise ValueError(f"Checkpoint directory {directory!r}: LATEST points to "
                     f"{name!r}, which is missing. Delete the directory to "
                     "start over.")
  return int(name[len("epoch-"):]), path


def restore(path: str, model, optimizer) -> History:
  """Loads model variables and optimizer state from ``path``; returns History."""
  # Optimizer slots must exist before reading so they are restored in place.
  optimizer.build(model.trainable_weights)
  try:
    _trackable(model, optimizer).read(
        os.path.join(path, _PREFIX)).assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    raise ValueError(f"Checkpoint {path!r} does not match model "
                     f"{model.name!r} and its optimizer ({e}). Use a fresh "
                     "checkpoint_dir for a different model or optimizer.") from e
  with open(os.path.join(path, _HISTORY)) as f:
    return History.from_dict(json.load(f))
