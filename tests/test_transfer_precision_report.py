"""The int8-against-float section of the transfer report."""
from benchmarks.transfer_lib import aggregate, plan, precision_report

LOWERINGS = (plan.Lowering("tl", "float"), plan.Lowering("tl", "int8", True),
             plan.Lowering("tl", "int8", False))
# Accuracy per lowering (no seed noise): QAS 0.5 pp under float, no QAS 6.
ACCURACY = {LOWERINGS[0]: 0.800, LOWERINGS[1]: 0.795, LOWERINGS[2]: 0.740}


def _records(lowerings=LOWERINGS):
  configs = plan.grid(backbones=["tiny"], methods=["tinytl_b", "ft_last"],
                      datasets=["lfw", "digits"], seeds=[0, 1], shots=[10],
                      optimizer="sgd", lowerings=lowerings)
  return [dict(run_id=c.run_id, config=c.to_dict(),
               accuracy=ACCURACY[c.lowering] + 0.01 * c.seed,
               arena_bytes=60_000 if c.precision == "int8" else 70_000)
          for c in configs]


def test_section_compares_each_int8_lowering_with_float():
  groups = aggregate.group_records(_records())
  text = "\n\n".join(precision_report.section(groups, batch_size=8))
  assert text.startswith(precision_report.TITLE)
  assert "| lfw | TinyTL-B | 80.5 ± 0.7 | 80.0 ± 0.7 | 74.5 ± 0.7 |" in text
  assert "| -0.5 | -6.0 | 68.4 | 58.6 | 58.6 |" in text
  assert "tl int8 QAS − tl float: mean -0.5 pp over 4" in text
  assert "met on the mean, met in 4 of 4 cells" in text
  assert "tl int8 no QAS − tl float: mean -6.0 pp" in text
  assert "host_training.fit_int8" in text


def test_section_is_left_out_without_two_precisions():
  groups = aggregate.group_records(_records(LOWERINGS[:1]))
  assert precision_report.section(groups, batch_size=8) == []


def test_a_missed_target_says_so():
  records = _records()
  for r in records:
    if r["config"].get("qas") is True:
      r["accuracy"] -= 0.05
  text = "\n".join(precision_report.section(
      aggregate.group_records(records), batch_size=8))
  assert "**missed** on the mean, met in 0 of 4 cells" in text
