"""Figures shipped in an export are deterministic PNGs."""
from tflite_tl.firmware import plots


def _png():
  return plots.device_loss_curve([1.5, 1.0, 0.7], samples=16, batch=1,
                                 accuracy_before=0.6, accuracy_after=0.65,
                                 held_out=84, title="On-device training")


def test_loss_curve_is_a_deterministic_png():
  a, b = _png(), _png()
  assert a == b
  assert a[:8] == b"\x89PNG\r\n\x1a\n"
  assert b"Software" not in a and b"matplotlib" not in a.lower()
