import gzip

import numpy as np
import pytest

from tflite_tl.data.idx import read_idx


def _idx(array):
  header = bytes([0, 0, 0x08, array.ndim]) + np.array(
      array.shape, ">u4").tobytes()
  return header + array.astype(np.uint8).tobytes()


def test_round_trip_plain_and_gzip(tmp_path):
  a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
  (tmp_path / "a").write_bytes(_idx(a))
  with gzip.open(tmp_path / "a.gz", "wb") as f:
    f.write(_idx(a))
  np.testing.assert_array_equal(read_idx(str(tmp_path / "a")), a)
  np.testing.assert_array_equal(read_idx(str(tmp_path / "a.gz")), a)


def test_truncated_and_bad_magic(tmp_path):
  (tmp_path / "t").write_bytes(_idx(np.zeros((2, 3), np.uint8))[:-1])
  with pytest.raises(ValueError, match="payload"):
    read_idx(str(tmp_path / "t"))
  (tmp_path / "m").write_bytes(b"\x01\x02\x08\x01")
  with pytest.raises(ValueError, match="magic"):
    read_idx(str(tmp_path / "m"))
