"""Per-channel int8 fits and layout matching of the builtin int8 rewrite
(tflite_tl.lower.int8_constants); the rewrite of whole graphs is checked in
test_lower_builtin_int8.py."""
import numpy as np

from tflite_tl.lower.int8_constants import _chunk_bounds  # pylint: disable=protected-access
from tflite_tl.lower.int8_constants import find_layout
from tflite_tl.lower.int8_constants import per_channel_int8


def test_per_channel_fit_and_layouts():
  rs = np.random.RandomState(0)
  q = rs.randint(-127, 128, size=(3, 3, 4, 5)).astype(np.float32)
  s = rs.rand(5).astype(np.float32) + 0.1
  w = (q * s).astype(np.float32)
  fit = per_channel_int8(w, s)
  assert fit is not None and fit[1] == 3
  np.testing.assert_array_equal(fit[0], q.astype(np.int8))
  assert per_channel_int8(w * np.float32(1.001), s) is None
  target = np.transpose(np.flip(w, (0, 1)), (0, 1, 3, 2))
  assert find_layout(w, target) == ((0, 1), (0, 1, 3, 2))
  assert find_layout(w, w + 1) is None


def test_chunk_bounds_cover_the_rows():
  assert _chunk_bounds(10, 4, 12) == [(0, 3), (3, 6), (6, 9), (9, 10)]
  assert _chunk_bounds(2, 100, 10) == [(0, 1), (1, 2)]
