import os

import pytest

from tflite_tl.export import atomic


def test_success_replaces_previous_export(tmp_path):
  out = tmp_path / "out"
  with atomic.atomic_directory(str(out)) as tmp:
    atomic.write_tree(tmp, {"report.json": "{}", "src/a.h": b"x"})
  assert (out / "src" / "a.h").read_bytes() == b"x"
  with atomic.atomic_directory(str(out)) as tmp:
    atomic.write_tree(tmp, {"report.json": "{}", "b.txt": "y"})
  assert sorted(os.listdir(out)) == ["b.txt", "report.json"]
  assert os.listdir(tmp_path) == ["out"]  # no temp dirs left behind


def test_failure_leaves_nothing(tmp_path):
  out = tmp_path / "out"
  with pytest.raises(RuntimeError):
    with atomic.atomic_directory(str(out)) as tmp:
      atomic.write_tree(tmp, {"report.json": "{}"})
      raise RuntimeError("does not fit")
  assert os.listdir(tmp_path) == []


def test_failure_keeps_previous_export_intact(tmp_path):
  out = tmp_path / "out"
  with atomic.atomic_directory(str(out)) as tmp:
    atomic.write_tree(tmp, {"report.json": "old"})
  with pytest.raises(KeyboardInterrupt):
    with atomic.atomic_directory(str(out)) as tmp:
      atomic.write_tree(tmp, {"report.json": "new"})
      raise KeyboardInterrupt
  assert (out / "report.json").read_text() == "old"
  assert os.listdir(tmp_path) == ["out"]


def test_refuses_to_replace_foreign_directory(tmp_path):
  out = tmp_path / "mine"
  out.mkdir()
  (out / "thesis.tex").write_text("precious")
  with pytest.raises(atomic.OutputExistsError, match="not a tflite-tl export"):
    with atomic.atomic_directory(str(out)):
      pass
  assert (out / "thesis.tex").read_text() == "precious"


def test_rejects_paths_outside(tmp_path):
  with pytest.raises(ValueError, match="outside"):
    atomic.write_tree(str(tmp_path), {"../x": "y"})
