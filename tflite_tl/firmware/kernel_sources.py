"""The TL_* training kernels an export registers, and the sources it ships.

A kernel-flavor graph (``lower_model(..., kernels="tl")``) uses custom ops
(``CUSTOM:TL_*``) that no TFLM distribution has: the exported library carries
their TFLM adapters (``tflm_kernels/tflm/``) and the framework-free math they
include (``tflm_kernels/reference/``), at the same relative paths, so their
``#include "tflm_kernels/..."`` lines resolve from the library's source root.
Only what the used ops need is shipped: the adapter file that defines each
``Register_TL_<op>()``, then the closure of its ``tflm_kernels/`` includes,
plus the ``.cc`` of every included header that has one (``op_utils.h`` ->
``op_utils.cc``).
"""
import functools
import pathlib
import re
from typing import Dict, Iterable, List, Mapping, Set

from tflite_tl.flatbuffer.reader import op_counts

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
KERNELS_DIR = REPO_ROOT / "tflm_kernels"
ADAPTERS_DIR = KERNELS_DIR / "tflm"
REGISTRY_HEADER = "tflm_kernels/tflm/training_ops.h"
NAMESPACE = "tflite_tl::tflm"
CUSTOM_PREFIX = "CUSTOM:"
TL_PREFIX = "TL_"
_REGISTER = re.compile(r"^TFLMRegistration\*\s+Register_(TL_\w+)\(\)\s*\{",
                       re.MULTILINE)
_INCLUDE = re.compile(r'^#include\s+"(tflm_kernels/[^"]+)"', re.MULTILINE)


class UnknownKernelError(ValueError):
  """A model uses a TL_* op that tflm_kernels/ does not implement."""


@functools.lru_cache(maxsize=1)
def _registrations() -> Dict[str, str]:
  """{TL op name: adapter source (repository-relative) that registers it}."""
  found = {}
  for path in sorted(ADAPTERS_DIR.glob("*.cc")):
    for op in _REGISTER.findall(path.read_text(encoding="utf-8")):
      found[op] = str(path.relative_to(REPO_ROOT))
  return found


def known_ops() -> List[str]:
  return sorted(_registrations())


def tl_ops(models: Mapping[str, bytes]) -> List[str]:
  """The TL_* custom ops the models use, sorted."""
  ops = set()
  for data in models.values():
    for op in op_counts(data):
      if op.startswith(CUSTOM_PREFIX + TL_PREFIX):
        ops.add(op[len(CUSTOM_PREFIX):])
  return sorted(ops)


def registrations(ops: Iterable[str]) -> Dict[str, str]:
  """{op: C++ expression of its TFLMRegistration*} for the resolver."""
  known = _registrations()
  out = {}
  for op in ops:
    if op not in known:
      raise UnknownKernelError(
          f"Custom op '{op}' has no TFLM adapter in tflm_kernels/tflm/ "
          f"(known: {', '.join(known_ops())}); add its kernel there or "
          "lower with kernels='builtin'.")
    out[op] = f"{NAMESPACE}::Register_{op}()"
  return out


def _includes(rel: str) -> List[str]:
  return _INCLUDE.findall((REPO_ROOT / rel).read_text(encoding="utf-8"))


def source_files(ops: Iterable[str]) -> List[str]:
  """Repository-relative paths of every kernel file the ops need, sorted
  (empty for no ops)."""
  ops = list(ops)
  if not ops:
    return []
  registrations(ops)  # names an unknown op
  todo = [_registrations()[op] for op in ops] + [REGISTRY_HEADER]
  seen: Set[str] = set()
  while todo:
    rel = todo.pop()
    if rel in seen:
      continue
    if not (REPO_ROOT / rel).is_file():
      raise FileNotFoundError(f"{rel}, included by a TL kernel, is missing.")
    seen.add(rel)
    todo += _includes(rel)
    if rel.endswith(".h"):
      impl = rel[:-2] + ".cc"
      if (REPO_ROOT / impl).is_file():
        todo.append(impl)
  return sorted(seen)


def sources(ops: Iterable[str]) -> Dict[str, str]:
  """{repository-relative path: text} of :func:`source_files`."""
  return {rel: (REPO_ROOT / rel).read_text(encoding="utf-8")
          for rel in source_files(ops)}
