import json
import os
import subprocess
import sys

import pytest

from tflite_tl import devices
from benchmarks import arena_profile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _profile():
  return arena_profile.ArenaProfile("tiny", 32, 1, (
      arena_profile.MethodArena("ft_last", 34000, 24000, 10000, 32000, 20000,
                                12000),
      arena_profile.MethodArena("ft_full", 300000, 200000, 100000, 32000,
                                20000, 12000)))


def _devices():
  return {n: devices.get_device(n) for n in ("nano33ble", "stm32h743")}


def test_board_arena_shares_the_head():
  small = _profile().results[0]
  assert small.board == 10000 + 12000 + 24000
  assert sum(small.segments.values()) == small.board


def test_json_and_markdown_report_fit_per_device():
  data = json.loads(arena_profile.to_json(_profile(), _devices()))
  by_method = {m["method"]: m for m in data["methods"]}
  assert by_method["ft_last"]["fits"] == {"nano33ble": True, "stm32h743": True}
  assert by_method["ft_full"]["fits"] == {"nano33ble": False,
                                          "stm32h743": True}
  assert data["source"].startswith("measured")
  md = arena_profile.to_markdown(_profile(), _devices())
  assert "| ft_full | 300000 | 32000 | 312000 | no | fits |" in md


def test_png_is_deterministic_and_atomic(tmp_path):
  a, b = tmp_path / "a.png", tmp_path / "b.png"
  arena_profile.plot(str(a), _profile(), _devices())
  arena_profile.plot(str(b), _profile(), _devices())
  assert a.read_bytes() == b.read_bytes()
  assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"



def test_unknown_method_is_a_clear_error():
  with pytest.raises(ValueError, match="Unknown method.*nope.*Supported"):
    arena_profile.profile_methods("tiny", ["nope"])


def test_cli_unknown_device_exits_nonzero_without_png(tmp_path):
  png = tmp_path / "chart.png"
  proc = subprocess.run(
      [sys.executable, "-m", "benchmarks.profile_arena", "--model=tiny",
       "--methods=ft_last", "--devices=uno", f"--png={png}"],
      cwd=ROOT, capture_output=True, text=True)
  assert proc.returncode != 0
  assert "Unknown device 'uno'" in proc.stderr
  assert not png.exists()


@pytest.mark.slow
def test_cli_measures_two_methods(tmp_path):
  png = tmp_path / "chart.png"
  proc = subprocess.run(
      [sys.executable, "-m", "benchmarks.profile_arena", "--model=tiny",
       "--methods=ft_last,tinytl_b", "--devices=nano33ble", "--format=json",
       f"--png={png}"], cwd=ROOT, capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr
  data = json.loads(proc.stdout)
  assert [m["method"] for m in data["methods"]] == ["ft_last", "tinytl_b"]
  assert all(m["train_total"] > 0 for m in data["methods"])
  assert png.exists()


def test_png_legend_is_inside_the_figure(tmp_path, monkeypatch):
  figures = []
  monkeypatch.setattr(arena_profile.plt, "close", figures.append)
  arena_profile.plot(str(tmp_path / "a.png"), _profile(), _devices())
  fig = figures[0]
  fig.canvas.draw()
  legend = fig.legends[0].get_window_extent()
  assert fig.bbox.x0 <= legend.x0 and legend.x1 <= fig.bbox.x1
  assert fig.bbox.y0 <= legend.y0
  assert fig.axes[0].get_tightbbox().y0 >= legend.y1 - 1


def _int8_profile():
  row = arena_profile.MethodArena(
      "tinytl_b", 60000, 50000, 10000, 12000, 8000, 4000, train_ops=35,
      train_tflite_bytes=19000, predict_tflite_bytes=15000,
      infer_tflite_bytes=16000, int8_infer_total=20000,
      int8_infer_head=12000, int8_infer_tail=8000)
  return arena_profile.ArenaProfile("tiny", 32, 2, (row,), kernels="tl",
                                    precision="int8", qas=True)


def test_int8_inference_targets_are_stated_met_or_missed():
  md = arena_profile.to_markdown(_int8_profile(), _devices())
  assert "lowering tl int8 QAS" in md
  # 60000 / 20000 = 3.00 (target 2), 19000 / 16000 = 1.19 (target 1.3).
  assert "| 3.00× (**missed**) | 1.19× (met) |" in md
  data = json.loads(arena_profile.to_json(_int8_profile(), _devices()))
  assert data["precision"] == "int8" and data["kernels"] == "tl"
  assert data["methods"][0]["arena_vs_int8_inference"] == 3.0
  assert "infer.tflite" not in arena_profile.to_markdown(_profile(),
                                                         _devices())


def test_flavors_side_by_side():
  builtin = arena_profile.ArenaProfile("tiny", 32, 2, (
      arena_profile.MethodArena("tinytl_b", 110000, 86000, 24000, 0, 0, 0,
                                train_ops=147),))
  md = arena_profile.compare_markdown(builtin, _int8_profile())
  assert "builtin float against tl int8 QAS" in md
  assert ("| tinytl_b | 147 / 35 | 86,000 / 50,000 | 24,000 / 10,000 "
          "| 110,000 / 60,000 | 4.2 | 2.4 | 1.8 |") in md


def test_builtin_int8_is_labelled_as_int8_weights():
  profile = arena_profile.ArenaProfile("tiny", 32, 1, (), kernels="builtin",
                                       precision="int8")
  assert profile.lowering == "builtin int8 weights"


def test_int8_step_and_inference_measured(native_runner):
  del native_runner
  profile = arena_profile.profile_methods(
      "tiny", ["ft_last"], batch_size=1, kernels="tl", precision="int8",
      int8_inference=True)
  row = profile.results[0]
  assert profile.lowering == "tl int8 QAS"
  assert 0 < row.train_head < row.train_total and row.train_ops > 0
  assert row.int8_infer_total > 0 and row.infer_tflite_bytes > 0
  assert row.train_tflite_bytes > 0 and row.predict_tflite_bytes > 0
