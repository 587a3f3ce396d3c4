import json
import os

import pytest

from benchmarks.transfer_lib.store import ResultsFileError, ResultsStore


def test_append_persists_and_reloads(tmp_path):
  path = str(tmp_path / "r.jsonl")
  with ResultsStore(path) as store:
    store.append({"run_id": "a", "accuracy": 0.5})
    store.append({"run_id": "b", "accuracy": 0.6})
  again = ResultsStore(path)
  assert "a" in again and "b" in again and len(again) == 2
  assert [r["run_id"] for r in again.records()] == ["a", "b"]


def test_truncated_last_line_is_skipped_then_repaired(tmp_path):
  path = tmp_path / "r.jsonl"
  path.write_bytes(b'{"run_id": "a", "x": 1}\n{"run_id": "b", "x"')
  store = ResultsStore(str(path))
  assert [r["run_id"] for r in store.records()] == ["a"]
  with ResultsStore(str(path)) as store:
    store.append({"run_id": "c"})
  lines = path.read_text().splitlines()
  assert [json.loads(l)["run_id"] for l in lines] == ["a", "c"]


def test_last_line_without_newline_counts_as_unfinished(tmp_path):
  # A kill can land exactly before the newline: the run is redone.
  path = tmp_path / "r.jsonl"
  path.write_bytes(b'{"run_id": "a"}\n{"run_id": "b"}')
  assert [r["run_id"] for r in ResultsStore(str(path)).records()] == ["a"]


def test_damage_before_the_last_line_is_an_error(tmp_path):
  path = tmp_path / "r.jsonl"
  path.write_bytes(b'{"run_id": "a"}\nnot json\n{"run_id": "b"}\n')
  with pytest.raises(ResultsFileError, match="line 2"):
    ResultsStore(str(path))


def test_append_needs_the_lock_and_a_run_id(tmp_path):
  store = ResultsStore(str(tmp_path / "r.jsonl"))
  with pytest.raises(ResultsFileError, match="write lock"):
    store.append({"run_id": "a"})
  with store:
    with pytest.raises(ValueError, match="run_id"):
      store.append({"accuracy": 1.0})


def test_second_writer_is_refused(tmp_path):
  path = str(tmp_path / "r.jsonl")
  with ResultsStore(path):
    with pytest.raises(ResultsFileError, match="another sweep"):
      with ResultsStore(path):
        pass


def test_merge_adds_only_new_run_ids(tmp_path):
  a, b = str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")
  with ResultsStore(a) as store:
    store.append({"run_id": "x", "v": 1})
  with ResultsStore(b) as store:
    store.append({"run_id": "x", "v": 2})
    store.append({"run_id": "y", "v": 3})
  with ResultsStore(a) as store:
    assert store.merge_from(b) == 1
  assert [(r["run_id"], r["v"]) for r in ResultsStore(a).records()] == [
      ("x", 1), ("y", 3)]


def test_merge_from_a_missing_file_is_a_clear_error(tmp_path):
  with ResultsStore(str(tmp_path / "a.jsonl")) as store:
    with pytest.raises(ResultsFileError, match="no such results file"):
      store.merge_from(str(tmp_path / "mistyped.jsonl"))


def test_replace_all_rewrites_whole_lines_under_the_lock(tmp_path):
  path = str(tmp_path / "r.jsonl")
  with ResultsStore(path) as store:
    store.append({"run_id": "a", "x": 1})
    store.append({"run_id": "b", "x": 2})
    store.replace_all([{"run_id": "a", "x": 10}, {"run_id": "b", "x": 20}])
    assert store.get("a")["x"] == 10
  again = ResultsStore(path)
  assert [r["x"] for r in again.records()] == [10, 20]
  assert not os.path.exists(path + ".tmp")
  with pytest.raises(ResultsFileError, match="write lock"):
    again.replace_all([])
