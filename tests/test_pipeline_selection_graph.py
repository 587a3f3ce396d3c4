"""The selection pass's verdict: TFLM's Fisher potentials against TF's, and
against TF on ulp-perturbed images where TF's own potentials are
ill-conditioned."""
import numpy as np

from tflite_tl.pipeline import selection_graph

LAYERS = ("a", "b")


def _potentials(seed, scale=1.0):
  rs = np.random.RandomState(seed)
  return {"a": rs.rand(8) * scale, "b": rs.rand(16) * scale}


def _moved(p, rel, seed):
  """``p`` with its largest entry per layer moved by ``rel`` of the layer's
  maximum (the error measure's unit)."""
  out = {}
  for k, (name, v) in enumerate(sorted(p.items())):
    v = v.copy()
    v[int(np.argmax(v)) if (seed + k) % 2 else 0] += rel * np.max(np.abs(v))
    out[name] = v
  return out


def test_exact_when_within_tolerance_of_tf():
  want = _potentials(0)
  got = _moved(want, 1e-6, 0)
  r = selection_graph.compare_potentials(got, want, [], LAYERS)
  assert r["parity"] == "exact"
  assert 0 < r["max_rel_err"] <= selection_graph.TOLERANCE
  assert r["same_ranking"]


def test_within_rounding_when_tf_itself_moves_and_tflm_matches_a_run():
  want = _potentials(0)
  # TF's own potentials move by 3e-4 under 1-ulp noise; TFLM sits on one of
  # the perturbed runs, 3e-4 from the unperturbed reference.
  perturbed = [_moved(want, 3e-4, k) for k in range(4)]
  got = _moved(perturbed[2], 1e-6, 5)
  r = selection_graph.compare_potentials(got, want, perturbed, LAYERS)
  assert r["max_rel_err"] > selection_graph.TOLERANCE
  assert r["reference_sensitivity"] > selection_graph.TOLERANCE
  assert r["nearest_perturbed_rel_err"] <= selection_graph.TOLERANCE
  assert r["parity"] == "within_rounding"


def test_within_rounding_when_tflm_is_inside_tf_own_spread():
  want = _potentials(0)
  # TF moves by 2.8e-4 under the noise; TFLM is 1.3e-4 away from TF and
  # from each perturbed run (another rounding, not one of the 4 draws).
  perturbed = [_moved(want, 2.8e-4, k) for k in range(4)]
  got = {n: v.copy() for n, v in want.items()}
  got["a"][3] -= 1.3e-4 * np.max(want["a"])
  r = selection_graph.compare_potentials(got, want, perturbed, LAYERS)
  assert r["nearest_perturbed_rel_err"] > selection_graph.TOLERANCE
  assert r["max_rel_err"] <= r["reference_sensitivity"]
  assert r["parity"] == "within_rounding"


def test_a_wrong_scale_fails_even_when_tf_is_ill_conditioned():
  want = _potentials(0)
  perturbed = [_moved(want, 3e-4, k) for k in range(4)]
  # Potentials off by 1 %: no rounding explains them.
  got = {n: v * 1.01 for n, v in want.items()}
  r = selection_graph.compare_potentials(got, want, perturbed, LAYERS)
  assert r["parity"] == "failed"
  assert r["nearest_perturbed_rel_err"] > selection_graph.TOLERANCE


def test_a_miss_fails_when_tf_is_well_conditioned():
  want = _potentials(0)
  # TF does not move under the noise: a 2e-4 miss is the lowering's.
  perturbed = [_moved(want, 1e-7, k) for k in range(4)]
  got = _moved(want, 2e-4, 1)
  r = selection_graph.compare_potentials(got, want, perturbed, LAYERS)
  assert r["parity"] == "failed"
  assert r["worst_layer"] in LAYERS


def test_ranking_is_reported_per_layer():
  want = _potentials(0)
  got = {n: v.copy() for n, v in want.items()}
  b = got["b"]
  i, j = np.argsort(-b)[:2]
  b[i], b[j] = b[j], b[i]  # swap the top two channels of layer b
  r = selection_graph.compare_potentials(got, want, [], LAYERS)
  assert not r["same_ranking"]
