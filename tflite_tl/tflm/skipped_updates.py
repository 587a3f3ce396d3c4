"""A train step whose update is not finite is skipped, not applied.

One SGD step with a huge learning rate (or an overflow in the forward pass)
turns parameters into inf or NaN, and every later step then trains on NaN:
the run is lost, silently. The runner checks the result of a run and, when a
loss or a parameter is not finite, finds the offending updates and replays
the run without them, which is exactly what a train step that skips a
non-finite update computes: the parameters stay those before that step.
The skipped steps are reported (:attr:`TrainRun.skipped_steps`) with their
loss. A train step lowered today skips its own update on a non-finite loss
(:func:`skips_by_itself`), as it must on a board; the replay remains for an
update that overflows while its loss is finite, and for graphs lowered
without that guard.

``run(step_indices)`` runs those steps from the initial parameters and
returns (losses, raw variables after the last step). A clean run costs one
call, as before; each skipped step costs about two more.
"""
from typing import Callable, Dict, List, Mapping, Sequence, Tuple

import numpy as np

from tflite_tl.flatbuffer import reader
from tflite_tl.lower.tl import params as tl_params

Run = Callable[[Sequence[int]], Tuple[np.ndarray, Dict[str, np.ndarray]]]


def skips_by_itself(train_tflite: bytes) -> bool:
  """True when the train step leaves its variables as they were on a
  non-finite loss: a kernel-flavor graph, or a builtin one whose every
  update is guarded (:func:`tflite_tl.flatbuffer.reader.updates_are_guarded`).
  """
  return (tl_params.is_tl_graph(train_tflite)
          or reader.updates_are_guarded(train_tflite))


def all_finite(values: Mapping[str, np.ndarray]) -> bool:
  return all(np.all(np.isfinite(np.asarray(v, np.float64)))
             for v in values.values())


def _first_bad(losses: Sequence[float]) -> int:
  bad = np.flatnonzero(~np.isfinite(np.asarray(losses, np.float64)))
  return int(bad[0]) if len(bad) else len(losses)


def replay_skipping(run: Run, count: int, first_losses: np.ndarray,
                    first_params: Dict[str, np.ndarray],
                    initial: Callable[[], Dict[str, np.ndarray]]
                    ) -> Tuple[np.ndarray, Dict[str, np.ndarray], List[int]]:
  """(losses of every step, variables after the accepted steps, skipped
  step indices), given a first run of all ``count`` steps.

  A step is skipped when its loss is not finite or its update leaves a
  parameter non-finite. Updates whose next loss was finite are trusted (a
  non-finite parameter shows in the next step's loss); the one before the
  first non-finite loss is tried alone.
  """
  losses = np.full(count, np.nan)
  accepted: List[int] = []
  skipped: List[int] = []
  pending = list(range(count))
  run_losses, params = first_losses, first_params
  params_of = list(pending)  # the steps whose result ``params`` holds
  while pending:
    tail = run_losses[len(accepted):]
    j = _first_bad(tail)
    if j == len(pending) and all_finite(params):
      losses[pending] = tail
      accepted += pending
      break
    sure = max(j - 1, 0)
    losses[pending[:sure]] = tail[:sure]
    accepted += pending[:sure]
    suspect = pending[sure]
    trial_losses, trial_params = run(accepted + [suspect])
    losses[suspect] = trial_losses[-1]
    if np.isfinite(trial_losses[-1]) and all_finite(trial_params):
      accepted.append(suspect)
      params, params_of = trial_params, list(accepted)
    else:
      skipped.append(suspect)
    pending = pending[sure + 1:]
    if pending:
      run_losses, params = run(accepted + pending)
      params_of = accepted + pending
  if params_of != accepted:
    params = run(accepted)[1] if accepted else initial()
  return losses, params, skipped
