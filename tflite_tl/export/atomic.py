"""All-or-nothing output directories.

Files are written into a temporary directory beside the target (same file
system, so the final rename is atomic); only a complete export is renamed into
place. On any error the temporary directory is removed and the target is left
exactly as it was.
"""
import contextlib
import os
import shutil
import tempfile
from typing import Iterator, Mapping, Union

Content = Union[str, bytes]


class OutputExistsError(FileExistsError):
  """The target exists and is not a previous export we may replace."""


MARKER = "report.json"


def write_tree(root: str, files: Mapping[str, Content]) -> None:
  """Writes {relative path: text or bytes} under root, in sorted order."""
  for rel in sorted(files):
    if os.path.isabs(rel) or ".." in rel.split("/"):
      raise ValueError(f"Refusing to write outside the export: {rel!r}")
    path = os.path.join(root, *rel.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = files[rel]
    if isinstance(data, str):
      data = data.encode("utf-8")
    with open(path, "wb") as f:
      f.write(data)


@contextlib.contextmanager
def atomic_directory(target: str, overwrite: bool = True) -> Iterator[str]:
  """Yields a temp dir; on success it replaces ``target`` in one rename.

  An existing target is replaced only if it looks like an export (it holds
  report.json) or is empty, so a mistyped --out never deletes user files.
  """
  target = os.path.abspath(target)
  parent = os.path.dirname(target)
  if os.path.exists(target):
    if not os.path.isdir(target):
      raise OutputExistsError(f"--out {target} exists and is not a directory.")
    if os.listdir(target) and not os.path.exists(os.path.join(target, MARKER)):
      raise OutputExistsError(
          f"--out {target} exists and is not a tflite-tl export (no {MARKER}); "
          "choose a new or empty directory.")
    if not overwrite:
      raise OutputExistsError(f"--out {target} exists.")
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix="." + os.path.basename(target) + ".tmp-",
                         dir=parent)
  try:
    yield tmp
    os.chmod(tmp, 0o755)
    if os.path.exists(target):
      old = tempfile.mkdtemp(prefix="." + os.path.basename(target) + ".old-",
                             dir=parent)
      os.rmdir(old)
      os.replace(target, old)
      os.replace(tmp, target)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.replace(tmp, target)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
