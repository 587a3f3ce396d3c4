import os

import pytest

from tflite_tl import atomic


def test_success_replaces_previous_export(tmp_path):
  out = tmp_path / "out"
  with atomic.atomic_directory(str(out), "report.json") as tmp:
    atomic.write_tree(tmp, {"report.json": "{}", "src/a.h": b"x"})
  assert (out / "src" / "a.h").read_bytes() == b"x"
  with atomic.atomic_directory(str(out), "report.json") as tmp:
    atomic.write_tree(tmp, {"report.json": "{}", "b.txt": "y"})
  assert sorted(os.listdir(out)) == ["b.txt", "report.json"]
  assert os.listdir(tmp_path) == ["out"]  # no temp dirs left behind


def test_failure_leaves_nothing(tmp_path):
  out = tmp_path / "out"
  with pytest.raises(RuntimeError):
    with atomic.atomic_directory(str(out), "report.json") as tmp:
      atomic.write_tree(tmp, {"report.json": "{}"})
      raise RuntimeError("does not fit")
  assert os.listdir(tmp_path) == []


def test_failure_keeps_previous_export_intact(tmp_path):
  out = tmp_path / "out"
  with atomic.atomic_directory(str(out), "report.json") as tmp:
    atomic.write_tree(tmp, {"report.json": "old"})
  with pytest.raises(KeyboardInterrupt):
    with atomic.atomic_directory(str(out), "report.json") as tmp:
      atomic.write_tree(tmp, {"report.json": "new"})
      raise KeyboardInterrupt
  assert (out / "report.json").read_text() == "old"
  assert os.listdir(tmp_path) == ["out"]


def test_refuses_to_replace_foreign_directory(tmp_path):
  out = tmp_path / "mine"
  out.mkdir()
  (out / "thesis.tex").write_text("precious")
  with pytest.raises(atomic.OutputExistsError, match="not a tflite-tl output"):
    with atomic.atomic_directory(str(out), "report.json"):
      pass
  assert (out / "thesis.tex").read_text() == "precious"


def test_rejects_paths_outside(tmp_path):
  with pytest.raises(ValueError, match="outside"):
    atomic.write_tree(str(tmp_path), {"../x": "y"})


def test_write_file_replaces_whole_or_not_at_all(tmp_path):
  path = tmp_path / "sub" / "report.json"
  atomic.write_file(str(path), "old")
  atomic.write_file(str(path), b"new")
  assert path.read_text() == "new"
  with pytest.raises(RuntimeError):
    with atomic.replacing(str(path)) as tmp:
      with open(tmp, "w") as f:
        f.write("half")
      raise RuntimeError("killed")
  assert path.read_text() == "new"
  assert os.listdir(path.parent) == ["report.json"]


def test_replacing_lets_the_writer_create_the_file(tmp_path):
  path = tmp_path / "lib.so"
  with atomic.replacing(str(path)) as tmp:
    assert not os.path.exists(tmp)  # e.g. a linker's -o target
    with open(tmp, "wb") as f:
      f.write(b"\x7fELF")
  assert path.read_bytes() == b"\x7fELF"
  assert oct(path.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's mode
