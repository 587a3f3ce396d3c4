"""Which lowering flavors an export tries, in which order, and why."""
import pytest

from tflite_tl.pipeline.config import ExportConfig
from tflite_tl.pipeline.config import ExportError
from tflite_tl.pipeline.config import Flavor
from tflite_tl.pipeline.config import plan_flavors

_TL_INT8, _TL_FLOAT = Flavor("tl", "int8"), Flavor("tl", "float")
_BUILTIN = Flavor("builtin", "float")
_BUILTIN_INT8 = Flavor("builtin", "int8")


def _plan(monkeypatch, tflm_root, **kw):
  if tflm_root:
    monkeypatch.setenv("TFLM_ROOT", "/somewhere/tflite-micro")
  else:
    monkeypatch.delenv("TFLM_ROOT", raising=False)
  return plan_flavors(ExportConfig(out="unused", **kw))


def test_auto_without_tflm_root_is_builtin_and_says_why(monkeypatch):
  flavors, why = _plan(monkeypatch, False)
  assert flavors == (_BUILTIN, _BUILTIN_INT8)
  assert "TFLM_ROOT is not set" in why
  assert "[builtin kernels, float], [builtin kernels, int8] that fits" in why


def test_auto_with_tflm_root_prefers_int8_tl_then_float_then_builtin(
    monkeypatch):
  flavors, why = _plan(monkeypatch, True)
  assert flavors == (_TL_INT8, _TL_FLOAT, _BUILTIN, _BUILTIN_INT8)
  assert "fits the board and passes the TFLM parity check" in why


@pytest.mark.parametrize("kw, expected", [
    ({"kernels": "tl"}, (_TL_INT8, _TL_FLOAT)),
    ({"kernels": "tl", "precision": "float"}, (_TL_FLOAT,)),
    ({"precision": "int8"}, (_TL_INT8, _BUILTIN_INT8)),
    ({"precision": "float"}, (_TL_FLOAT, _BUILTIN)),
    ({"kernels": "builtin"}, (_BUILTIN,)),
    ({"kernels": "builtin", "precision": "int8"},
     (Flavor("builtin", "int8"),)),
])
def test_explicit_choices_narrow_the_candidates(monkeypatch, kw, expected):
  assert _plan(monkeypatch, True, **kw)[0] == expected


def test_builtin_int8_needs_no_tflm_root(monkeypatch):
  flavors, why = _plan(monkeypatch, False, kernels="builtin",
                       precision="int8", momentum=0.9)
  assert flavors == (Flavor("builtin", "int8"),)
  assert why == "--kernels=builtin --precision=int8"


def test_momentum_keeps_auto_on_builtin(monkeypatch):
  flavors, why = _plan(monkeypatch, True, momentum=0.9)
  assert flavors == (_BUILTIN, _BUILTIN_INT8)
  assert "plain SGD" in why


def test_int8_without_tflm_root_is_builtin_int8(monkeypatch):
  flavors, _ = _plan(monkeypatch, False, precision="int8")
  assert flavors == (_BUILTIN_INT8,)


@pytest.mark.parametrize("tflm_root, kw, message", [
    (False, {"kernels": "tl"}, "set TFLM_ROOT="),
    (True, {"kernels": "tl", "momentum": 0.9}, "plain SGD"),
    (True, {"kernels": "gpu"}, "Unknown --kernels 'gpu'"),
    (True, {"precision": "fp16"}, "Unknown --precision 'fp16'"),
])
def test_impossible_choices_are_refused(monkeypatch, tflm_root, kw, message):
  with pytest.raises(ExportError, match=message):
    _plan(monkeypatch, tflm_root, **kw)
