import pytest

from tflite_tl import data
from tflite_tl.data import fashion_mnist
from tflite_tl.data.summary import summarize


def test_summary_of_small_datasets():
  rows = summarize(8, 1, ["digits", "lfw"])
  assert [r.name for r in rows] == ["digits", "lfw"]
  assert rows[0].installed and rows[0].train + rows[0].test == 1797
  assert rows[1].shape == (8, 8, 1) and rows[1].classes == 2
  assert "digits" in rows[0].line()


def test_missing_dataset_reported_not_raised(monkeypatch, tmp_path):
  monkeypatch.setattr(fashion_mnist, "DEFAULT_ROOT", str(tmp_path))
  (row,) = summarize(28, 1, ["fashion_mnist"])
  assert not row.installed and "apt-get install" in row.line()


def test_unknown_name_raises():
  with pytest.raises(ValueError, match="Supported"):
    summarize(8, 1, ["nope"])
