"""Data flows one way through the stages: no module imports a later stage,
and imports sit at the top of modules unless a comment says why not."""
import ast
import os

import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PACKAGE = os.path.join(_ROOT, "tflite_tl")

# Subpackages (and top-level modules) of tflite_tl in the order data flows.
# A module may import its own stage and earlier ones only. A new subpackage
# must be placed here.
STAGES = (
    ("_keras_env", "_compat", "flatbuffer", "atomic", "console",
     "ranges"),  # plumbing
    ("layers", "devices", "kernels"),  # Keras layers, board data, C++ ops
    # Host training is generic (the zoo's pretraining uses it too).
    ("models", "data", "train"),
    # The sparse-update selection and the rewrite that applies it.
    ("rewrite", "sparse"),
    ("memory",),
    ("lower",),
    ("tflm",),
    ("verify",),
    ("firmware",),
    ("pipeline",),
)
_RANK = {name: rank for rank, names in enumerate(STAGES) for name in names}
# The package facade resolves every subpackage lazily, by name.
_FACADE = "__init__"
# A function-level import needs a comment starting with one of these within
# the three lines above it.
_LAZY_REASONS = ("# Lazy", "# Imported here")


def _modules(directory):
  for root, dirs, files in os.walk(directory):
    dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
    for f in sorted(files):
      if f.endswith(".py"):
        yield os.path.join(root, f)


def _imported_names(node):
  """tflite_tl subpackages/modules an import statement reaches."""
  if isinstance(node, ast.Import):
    names = [a.name for a in node.names]
  elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
    names = [node.module]
    if node.module == "tflite_tl":
      names = [f"tflite_tl.{a.name}" for a in node.names]
  else:
    return []
  return [n.split(".")[1] for n in names
          if n.startswith("tflite_tl.") and len(n.split(".")) > 1]


def _stage(path):
  rel = os.path.relpath(path, _PACKAGE).split(os.sep)
  return rel[0][:-3] if len(rel) == 1 else rel[0]


def test_every_subpackage_has_a_stage():
  names = {n[:-3] if n.endswith(".py") else n for n in os.listdir(_PACKAGE)
           if not n.startswith((".", "__"))
           and (n.endswith(".py") or os.path.isdir(os.path.join(_PACKAGE, n)))}
  unranked = sorted(names - set(_RANK))
  assert not unranked, (
      f"tflite_tl subpackages without a stage: {unranked}; add each to "
      "STAGES in tests/test_import_graph.py after the stages it reads from.")


def test_no_module_imports_a_later_stage():
  violations = []
  for path in _modules(_PACKAGE):
    stage = _stage(path)
    if stage == _FACADE:
      continue
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
      for target in _imported_names(node):
        if target in _RANK and _RANK[target] > _RANK.get(stage, -1):
          violations.append(f"{os.path.relpath(path, _ROOT)}:{node.lineno} "
                            f"({stage}) imports {target}")
  assert not violations, "\n".join(violations)


@pytest.mark.parametrize("directory", ["tflite_tl", "export", "benchmarks"])
def test_imports_are_at_the_top_unless_a_comment_says_why(directory):
  unexplained = []
  for path in _modules(os.path.join(_ROOT, directory)):
    source = open(path, encoding="utf-8").read()
    lines = source.splitlines()
    tree = ast.parse(source, path)
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
      if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
        above = [l.strip() for l in lines[max(0, node.lineno - 4):
                                          node.lineno - 1]]
        if not any(l.startswith(_LAZY_REASONS) for l in above):
          unexplained.append(f"{os.path.relpath(path, _ROOT)}:{node.lineno}")
  assert not unexplained, (
      "imports inside functions without a '# Lazy: why' comment above: "
      + ", ".join(unexplained))
