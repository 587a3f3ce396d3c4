"""TFLM's integer arithmetic re-computed in TF: the fixed-point helpers
against an oracle written with Python integers, from TFLite's definitions."""
import math

import numpy as np
import pytest

from tflite_tl._compat import tf
from tflite_tl.lower.tl import int8_ops


def _srdhm(a, b):
  """gemmlowp SaturatingRoundingDoublingHighMul with Python ints."""
  if a == b == -(1 << 31):
    return (1 << 31) - 1
  ab = a * b
  nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
  v = ab + nudge
  return int(v / (1 << 31)) if v >= 0 else -((-v) // (1 << 31))


def _rdbp(x, exponent):
  mask = (1 << exponent) - 1
  remainder = x & mask
  threshold = (mask >> 1) + (1 if x < 0 else 0)
  return (x >> exponent) + (1 if remainder > threshold else 0)


def _mbqm(x, m, shift):
  left = shift if shift > 0 else 0
  right = 0 if shift > 0 else -shift
  return _rdbp(_srdhm(x * (1 << left), m), right)


@pytest.mark.parametrize("m", [1e-6, 0.0003, 0.4999, 0.5, 0.75, 1.0, 1.9999,
                               3.25, 1234.5])
def test_quantize_multiplier_reconstructs(m):
  q, shift = int8_ops.quantize_multiplier(m)
  assert (1 << 30) <= q < (1 << 31)
  assert math.isclose(q * 2.0 ** (shift - 31), m, rel_tol=2 ** -30)


def test_multiply_by_quantized_multiplier_matches_oracle():
  rng = np.random.default_rng(0)
  xs = list(rng.integers(-(1 << 20), 1 << 20, 400)) + [0, 1, -1, 2, -2, 3]
  for m_real in (0.0017, 0.21, 0.5, 0.9999, 1.7):
    m, shift = int8_ops.quantize_multiplier(m_real)
    got = int8_ops.multiply_by_quantized_multiplier(
        tf.constant(xs, tf.int64), m, shift).numpy()
    want = [_mbqm(int(x), m, shift) for x in xs]
    np.testing.assert_array_equal(got, want)


def test_rounding_divide_by_pot_ties_go_away_from_zero():
  x = tf.constant([5, -5, 6, -6, 7, -7, 2, -2], tf.int64)
  got = int8_ops.rounding_divide_by_pot(x, 1).numpy()
  np.testing.assert_array_equal(got, [_rdbp(int(v), 1) for v in x.numpy()])
  np.testing.assert_array_equal(got, [3, -3, 3, -3, 4, -4, 1, -1])


def test_round_half_away_differs_from_tf_round():
  x = tf.constant([0.5, 1.5, 2.5, -0.5, -2.5], tf.float64)
  np.testing.assert_array_equal(int8_ops.round_half_away(x).numpy(),
                                [1, 2, 3, -1, -3])
