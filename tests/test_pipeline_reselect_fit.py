"""TinyTrain's measured-fit feedback: after a RAM overrun the export selects
again from later layers, under a budget scaled by modelled / measured."""
import types

from tflite_tl.firmware import fit as fit_lib
from tflite_tl.pipeline import export


def _overrun(needed=277_362, available=235_930, flash_fits=True,
             flash_over=40_000, slots=131_072):
  flash_available = 786_432
  return fit_lib.DoesNotFitError("does not fit", types.SimpleNamespace(
      ram_needed=needed, ram_available=available,
      ram_fits=needed <= available, flash_fits=flash_fits,
      flash_needed=flash_available + (0 if flash_fits else flash_over),
      flash_available=flash_available,
      flash_consumers=(("sample area (11 records)", 225_280),
                       ("parameter slots (2)", slots))))


def _selection(layers=("b4_project", "b7_dw"), modelled=100_000):
  order = ("b1_dw", "b4_project", "b5_dw", "b7_dw", "b9_dw")
  return types.SimpleNamespace(
      layer_potentials=tuple((n, 1.0) for n in order),
      layer_names=tuple(layers), modelled_bytes=modelled)


def test_overrun_selects_after_the_earliest_layer_under_a_scaled_budget():
  options, steps = {"memory_budget": 100_000}, []
  later = export._reselect_later(options, object(), _overrun(),
                                 _selection(), steps)
  assert later == ["b5_dw", "b7_dw", "b9_dw"]
  measured = 100_000 + 277_362 - 235_930
  assert options["memory_budget"] == int(100_000 * 100_000 / measured)
  assert steps == [{"earliest_layer": "b4_project",
                    "layers": ["b4_project", "b7_dw"],
                    "memory_budget": 100_000, "modelled_bytes": 100_000,
                    "ram_needed": 277_362, "ram_available": 235_930,
                    "next_budget": options["memory_budget"]}]


def test_no_reselection_without_a_board_budget_or_for_flash():
  sel = _selection()
  assert export._reselect_later({"memory_budget": 1}, None,
                                _overrun(), sel, []) is None
  # Flash over by more than the parameter slots a smaller selection frees.
  assert export._reselect_later(
      {"memory_budget": 1}, object(),
      _overrun(flash_fits=False, flash_over=140_000), sel, []) is None
  assert export._reselect_later({"memory_budget": 1}, object(),
                                _overrun(), None, []) is None


def test_a_flash_overrun_within_the_parameter_slots_selects_again():
  # A smaller selection has smaller parameter slots: try it.
  later = export._reselect_later({"memory_budget": 100_000}, object(),
                                 _overrun(flash_fits=False, flash_over=40_000),
                                 _selection(), [])
  assert later == ["b5_dw", "b7_dw", "b9_dw"]


def test_reselection_stops_at_the_last_layer_and_after_the_limit():
  assert export._reselect_later({"memory_budget": 9}, object(),
                                _overrun(), _selection(("b9_dw",)),
                                []) is None
  full = [{}] * export.MAX_RESELECTIONS
  assert export._reselect_later({"memory_budget": 9}, object(),
                                _overrun(), _selection(), full) is None
