"""TinyTrain's measured-fit feedback: after a RAM overrun the export selects
again from later layers, under a budget scaled by modelled / measured; after
a flash overrun alone, under a parameter budget."""
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


# Forward order; the selection keeps its figures by name, where b10 sorts
# before b4.
FORWARD = ("input", "b1_dw", "b4_project", "b5_dw", "b7_dw", "b10_dw",
           "logits")


def _selection(layers=("b4_project", "b7_dw"), modelled=100_000,
               persisted=60_000):
  order = sorted(("b1_dw", "b4_project", "b5_dw", "b7_dw", "b10_dw"))
  return types.SimpleNamespace(
      layer_potentials=tuple((n, 1.0) for n in order),
      layer_names=tuple(layers), modelled_bytes=modelled,
      persisted_bytes=persisted)


def test_overrun_selects_after_the_earliest_layer_under_a_scaled_budget():
  # b4_project is the earliest chosen in forward order; by name b10_dw,
  # which is not chosen, and b1_dw come first.
  options, steps = {"memory_budget": 100_000}, []
  later = export._reselect_later(options, object(), _overrun(),
                                 _selection(), steps, FORWARD)
  assert later == ["b5_dw", "b7_dw", "b10_dw"]
  measured = 100_000 + 277_362 - 235_930
  assert options["memory_budget"] == int(100_000 * 100_000 / measured)
  assert steps == [{"reason": "ram", "earliest_layer": "b4_project",
                    "layers": ["b4_project", "b7_dw"],
                    "memory_budget": 100_000, "modelled_bytes": 100_000,
                    "ram_needed": 277_362, "ram_available": 235_930,
                    "next_budget": options["memory_budget"]}]


def test_no_reselection_without_a_board_budget_or_for_flash():
  sel = _selection()
  assert export._reselect_later({"memory_budget": 1}, None,
                                _overrun(), sel, [], FORWARD) is None
  # Flash over by more than the parameter slots a smaller selection frees.
  assert export._reselect_later(
      {"memory_budget": 1}, object(),
      _overrun(flash_fits=False, flash_over=140_000), sel, [],
      FORWARD) is None
  assert export._reselect_later({"memory_budget": 1}, object(),
                                _overrun(), None, [], FORWARD) is None


def test_a_flash_overrun_within_the_parameter_slots_selects_again():
  # A smaller selection has smaller parameter slots: try it.
  later = export._reselect_later({"memory_budget": 100_000}, object(),
                                 _overrun(flash_fits=False, flash_over=40_000),
                                 _selection(), [], FORWARD)
  assert later == ["b5_dw", "b7_dw", "b10_dw"]


def test_reselection_stops_at_the_last_layer_and_after_the_limit():
  # b10_dw is the last candidate in forward order (and the first by name).
  assert export._reselect_later({"memory_budget": 9}, object(),
                                _overrun(), _selection(("b10_dw",)),
                                [], FORWARD) is None
  full = [{}] * export.MAX_RESELECTIONS
  assert export._reselect_later({"memory_budget": 9}, object(),
                                _overrun(), _selection(), full,
                                FORWARD) is None


def test_a_flash_overrun_alone_selects_again_under_a_parameter_budget():
  options, steps = {"memory_budget": 100_000}, []
  fits_ram = _overrun(needed=200_000, flash_fits=False, flash_over=40_000)
  assert export._reselect_later(options, object(), fits_ram, _selection(),
                                steps, FORWARD) is None
  assert export._reselect_for_flash(options, object(), fits_ram,
                                    _selection(), steps)
  # The slots must give back the 40,000 B: the modelled parameters shrink
  # by the same share of the measured slots.
  bound = int(60_000 * (131_072 - 40_000) / 131_072)
  assert options == {"memory_budget": 100_000, "parameter_budget": bound}
  assert steps == [{"reason": "flash", "layers": ["b4_project", "b7_dw"],
                    "parameter_budget": None, "persisted_bytes": 60_000,
                    "parameter_slots_bytes": 131_072,
                    "flash_needed": 786_432 + 40_000,
                    "flash_available": 786_432,
                    "next_parameter_budget": bound}]


def test_no_flash_reselection_when_the_ram_misses_or_slots_cannot_help():
  sel, options = _selection(), {"memory_budget": 1}
  both = _overrun(flash_fits=False, flash_over=40_000)  # RAM misses too
  assert not export._reselect_for_flash(options, object(), both, sel, [])
  beyond = _overrun(needed=200_000, flash_fits=False, flash_over=140_000)
  assert not export._reselect_for_flash(options, object(), beyond, sel, [])
  flash_only = _overrun(needed=200_000, flash_fits=False)
  assert not export._reselect_for_flash(options, None, flash_only, sel, [])
  full = [{}] * export.MAX_RESELECTIONS
  assert not export._reselect_for_flash(options, object(), flash_only, sel,
                                        full)
  assert "parameter_budget" not in options
