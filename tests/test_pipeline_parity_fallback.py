"""The export never ships a graph TFLM does not reproduce: after a parity
failure at a batch it chose itself, it tries the same flavor at a smaller
batch before the next flavor (tflite_tl.pipeline.export)."""
import json

import pytest

from tflite_tl import pipeline
from tflite_tl.pipeline import export as export_lib


def _cfg(tmp_path, **kw):
  base = dict(out=str(tmp_path / "out"), model="tiny", finetune_epochs=0,
              device_epochs=0, samples_per_class=5, calibration_images=5,
              verify_steps=1, verify_images=5, device="portenta_h7",
              kernels="builtin", precision="float", max_samples=8)
  base.update(kw)
  return pipeline.ExportConfig(**base)


def _fail_parity_above(monkeypatch, batch_limit):
  """Parity fails (made up) for every batch above ``batch_limit``; returns
  the (flavor, batch) pairs the export verified, in order."""
  real = export_lib._verify
  seen = []

  def verify(cfg, model, chosen, *args, **kwargs):
    seen.append((str(chosen.flavor), chosen.batch))
    if chosen.batch > batch_limit:
      raise export_lib.ParityError(f"made up at batch {chosen.batch}")
    return real(cfg, model, chosen, *args, **kwargs)

  monkeypatch.setattr(export_lib, "_verify", verify)
  return seen


def test_a_parity_failure_retries_the_flavor_at_a_smaller_batch(
    tmp_path, monkeypatch):
  seen = _fail_parity_above(monkeypatch, 2)
  pipeline.run_export(_cfg(tmp_path))
  assert [batch for _, batch in seen] == [8, 4, 2]
  assert len({flavor for flavor, _ in seen}) == 1
  report = json.loads((tmp_path / "out" / "report.json").read_text())
  assert report["config"]["batch"] == 2
  rejected = report["lowering"]["rejected_by_parity"]
  assert [r["batch"] for r in rejected] == [8, 4]
  assert "made up at batch 8" in rejected[0]["reason"]
  assert "Not exported: builtin kernels, float, batch 8: made up" in (
      tmp_path / "out" / "REPORT.md").read_text()


def test_a_parity_failure_at_the_asked_batch_is_an_error(tmp_path,
                                                         monkeypatch):
  seen = _fail_parity_above(monkeypatch, 2)
  with pytest.raises(export_lib.ParityError, match="made up at batch 4"):
    pipeline.run_export(_cfg(tmp_path, batch=4))
  assert [batch for _, batch in seen] == [4]
  assert not (tmp_path / "out").exists()


def test_candidates_below_a_batch(tmp_path):
  config = _cfg(tmp_path)
  assert export_lib._candidates(config) == (1, 2, 4, 8)
  assert export_lib._candidates(config, 8) == (1, 2, 4)
  assert export_lib._candidates(config, 1) == ()
  fixed = _cfg(tmp_path, batch=4)
  assert export_lib._candidates(fixed) == (4,)
  assert export_lib._candidates(fixed, 4) == ()
