"""benchmarks.channel_axis_table: the same layers and channel fraction on each
axis, modelled and measured (builtin flavor, tiny at 16 px)."""
from benchmarks import channel_axis_table as channel_axis


def test_input_axis_keeps_fewer_activations_and_both_are_measured():
  rows = channel_axis.axis_rows("tiny", 16, 1, 0.25, "digits", 2, 0)
  by_axis = {r["axis"]: r for r in rows}
  assert set(by_axis) == {"input", "output"}
  assert by_axis["input"]["layers"] == by_axis["output"]["layers"] > 0
  # The input axis keeps [N,H,W,K] of the input, the output axis all of it.
  assert by_axis["input"]["stored_bytes"] < by_axis["output"]["stored_bytes"]
  for r in rows:
    assert 0 < r["channels"] < r["total_channels"]
    assert r["arena"] == r["head"] + r["tail"] > 0
  table = channel_axis.format_rows(rows)
  assert table.count("\n") == 3 and "| input |" in table
