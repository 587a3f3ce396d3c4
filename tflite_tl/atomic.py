"""Atomic writes: a file or a directory appears complete, or not at all.

Everything is first written under a temporary name beside the target (same
file system, so the final ``os.replace`` is atomic) and renamed into place
only when complete. On any error, or an interrupt, the temporary file or
directory is removed and the target is left exactly as it was. Used for every
file the package writes: exports, checkpoints, weights, reports, plots.
"""
import contextlib
import os
import secrets
import shutil
import tempfile
from typing import Iterator, Mapping, Optional, Union

Content = Union[str, bytes]


class OutputExistsError(FileExistsError):
  """The target exists and is not a previous output we may replace."""


def _temporary_name(path: str, kind: str) -> str:
  directory, base = os.path.split(os.path.abspath(path))
  return os.path.join(directory,
                      f".{base}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")


@contextlib.contextmanager
def replacing(path: str) -> Iterator[str]:
  """Yields a temporary path beside ``path``; whatever the block writes
  there replaces ``path`` in one rename when the block succeeds.

  The temporary file is not created: the writer (``open``, a compiler, a
  plotting library) creates it with the usual permissions.
  """
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  tmp = _temporary_name(path, "tmp")
  try:
    yield tmp
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def write_file(path: str, data: Content) -> None:
  """Writes ``data`` (text as UTF-8) to ``path`` atomically and durably."""
  if isinstance(data, str):
    data = data.encode("utf-8")
  with replacing(path) as tmp:
    with open(tmp, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())


def write_tree(root: str, files: Mapping[str, Content]) -> None:
  """Writes {relative path: text or bytes} under root, in sorted order."""
  for rel in sorted(files):
    if os.path.isabs(rel) or ".." in rel.split("/"):
      raise ValueError(f"Refusing to write outside the output: {rel!r}")
    path = os.path.join(root, *rel.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = files[rel]
    if isinstance(data, str):
      data = data.encode("utf-8")
    with open(path, "wb") as f:
      f.write(data)


def check_replaceable(target: str, marker: Optional[str]) -> None:
  """Raises OutputExistsError unless ``target`` may be replaced: it does not
  exist, is an empty directory, or is a directory holding ``marker`` (the
  sign of a previous output; None: any directory may be replaced)."""
  target = os.path.abspath(target)
  if not os.path.exists(target):
    return
  if not os.path.isdir(target):
    raise OutputExistsError(f"{target} exists and is not a directory.")
  if (marker is not None and os.listdir(target)
      and not os.path.exists(os.path.join(target, marker))):
    raise OutputExistsError(
        f"{target} exists and is not a tflite-tl output (no {marker}); "
        "choose a new or empty directory.")


@contextlib.contextmanager
def atomic_directory(target: str, marker: Optional[str] = None
                     ) -> Iterator[str]:
  """Yields a temporary directory; on success it replaces ``target`` in one
  rename.

  An existing target is replaced only if :func:`check_replaceable` allows
  it, so a mistyped output path never deletes a user's files.
  """
  check_replaceable(target, marker)
  target = os.path.abspath(target)
  parent = os.path.dirname(target)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix="." + os.path.basename(target) + ".tmp-",
                         dir=parent)
  try:
    yield tmp
    os.chmod(tmp, 0o755)
    if os.path.exists(target):
      old = _temporary_name(target, "old")
      os.replace(target, old)
      os.replace(tmp, target)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.replace(tmp, target)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
