"""Runs .tflite models in the real TFLM interpreter, in a subprocess.

TFLM aborts the whole process on some models (e.g. a failing kernel Prepare
calls abort()), so every run happens in a child process running ``_worker.py`` by path (so
that it imports neither this package nor TensorFlow: ~1 s to start);
a crash or non-zero exit becomes :class:`TflmRuntimeError` quoting what TFLM
printed (which names the failing op) instead of killing the caller.
"""
import dataclasses
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from tflite_tl.flatbuffer import edit
from tflite_tl.flatbuffer import reader
from tflite_tl.flatbuffer.integrity import check_intact
from tflite_tl.lower.tl import params as tl_params
from tflite_tl.tflm import native
from tflite_tl.tflm.arena import ArenaReport
from tflite_tl.tflm.arena import parse_allocations
from tflite_tl.tflm import skipped_updates
from tflite_tl.tflm import train_inputs

log = logging.getLogger(__name__)

_TIMEOUT_S = 1800
_OP_IN_MESSAGE = re.compile(
    r"(Node [A-Z0-9_]+ \(number \d+\)[^\n]*|Didn't find op for builtin opcode "
    r"'[A-Z0-9_]+'[^\n]*|[A-Z0-9_]{3,} (?:failed|not supported)[^\n]*)")


class TflmRuntimeError(RuntimeError):
  """The TFLM interpreter failed or crashed on a model."""


@dataclasses.dataclass
class RunResult:
  """Outputs per step, variables after the last step, arena (if measured)."""
  outputs: List[List[np.ndarray]]
  variables: Dict[str, np.ndarray]
  arena: Optional[ArenaReport]


@dataclasses.dataclass
class TrainRun:
  """Result of N on-device train steps.

  ``skipped_steps``: steps whose loss or update was not finite; their update
  was not applied (``losses`` still holds their loss).
  """
  losses: np.ndarray
  params: Dict[str, np.ndarray]
  arena: Optional[ArenaReport]
  skipped_steps: Tuple[int, ...] = ()


def default_arena_size(tflite_bytes: bytes) -> int:
  """An arena certainly large enough: every tensor unshared, plus slack."""
  return int(reader.total_tensor_bytes(tflite_bytes) * 1.25) + (4 << 20)


def run_model(tflite_bytes: bytes, steps_inputs: Sequence[Sequence[np.ndarray]],
              *, measure_arena: bool = False, read_variables: bool = False,
              arena_size: Optional[int] = None,
              backend: Optional[str] = None) -> RunResult:
  """Invokes the model once per element of ``steps_inputs`` (inputs in
  subgraph-0 order) in a TFLM subprocess, keeping state between invokes.

  With ``read_variables`` the resource variables' values after the last step
  are returned too; with ``measure_arena`` the recording allocator's report of
  a separate interpreter (one invoke on the first step's inputs).
  ``backend``: "wheel" (the tflite_micro package), "native" (TFLM built from
  $TFLM_ROOT with the TL_* ops, see :mod:`tflite_tl.tflm.native`),
  "cortex-m4f" (the same, built for Cortex-M4F and run in QEMU) or "auto"
  (native for models with TL_* ops or variable tensors); default
  $TFLITE_TL_TFLM_BACKEND or "auto".

  Raises:
    TfliteFileError: ``tflite_bytes`` is not a whole .tflite (checked before
      the interpreter reads it).
    TflmRuntimeError: the interpreter failed or crashed.
  """
  check_intact(tflite_bytes)
  selected = native.select_backend(tflite_bytes, backend)
  if selected in native.RUNNER_TARGETS:
    return native.run_model(tflite_bytes, steps_inputs,
                            measure_arena=measure_arena,
                            read_variables=read_variables,
                            arena_size=arena_size,
                            target=native.RUNNER_TARGETS[selected])
  ins = reader.inputs(tflite_bytes)
  outs = reader.outputs(tflite_bytes)
  steps_inputs = [list(s) for s in steps_inputs]
  if not steps_inputs:
    raise ValueError("run_model needs at least one step of inputs.")
  payload = {}
  for step, values in enumerate(steps_inputs):
    if len(values) != len(ins):
      raise ValueError(f"The model has {len(ins)} inputs "
                       f"({[i.name for i in ins]}); got {len(values)}.")
    for i, (value, info) in enumerate(zip(values, ins)):
      value = np.asarray(value)
      if tuple(value.shape) != info.shape:
        raise ValueError(f"Input {info.name!r} has shape "
                         f"{list(info.shape)}; got {list(value.shape)}.")
      payload[f"in{i}_{step}"] = value
  readouts = {}
  run_bytes = tflite_bytes
  if read_variables:
    # Expose each variable's READ_VARIABLE result as an extra output of a
    # copy of the model (the arena is still measured on the model as given).
    tensors = reader.variable_readouts(tflite_bytes)
    run_bytes = edit.with_extra_outputs(tflite_bytes, tensors.values())
    readouts = {name: len(outs) + k for k, name in enumerate(tensors)}
  options = {
      "num_inputs": len(ins), "num_outputs": len(outs),
      "steps": len(steps_inputs), "measure_arena": measure_arena,
      "arena_size": arena_size or default_arena_size(tflite_bytes),
      "readout_outputs": readouts,
  }
  with tempfile.TemporaryDirectory(prefix="tflite_tl_tflm_") as tmp:
    with open(os.path.join(tmp, "model.tflite"), "wb") as f:
      f.write(run_bytes)
    with open(os.path.join(tmp, "measured.tflite"), "wb") as f:
      f.write(tflite_bytes)
    np.savez(os.path.join(tmp, "request.npz"), options=json.dumps(options),
             **payload)
    _run_worker(tmp)
    result = np.load(os.path.join(tmp, "result.npz"))
    outputs = [[result[f"out{o}_{s}"] for o in range(len(outs))]
               for s in range(len(steps_inputs))]
    variables = {name: result[f"var:{name}"] for name in readouts}
    arena = None
    if measure_arena:
      with open(os.path.join(tmp, "allocations.txt"), encoding="utf-8",
                errors="replace") as f:
        arena = parse_allocations(f.read())
  return RunResult(outputs, variables, arena)


def _run_worker(request_dir: str) -> None:
  worker = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "_worker.py")
  proc = subprocess.run([sys.executable, worker, request_dir],
                        capture_output=True, timeout=_TIMEOUT_S, check=False)
  if proc.returncode == 0:
    return
  output = (proc.stdout + proc.stderr).decode("utf-8", errors="replace")
  raise TflmRuntimeError(describe_failure(proc.returncode, output))


def describe_failure(returncode: int, output: str) -> str:
  """A one-paragraph explanation of a failed TFLM run."""
  if returncode < 0:
    try:
      how = f"crashed with signal {signal.Signals(-returncode).name}"
    except ValueError:
      how = f"crashed with signal {-returncode}"
  else:
    how = f"failed (exit code {returncode})"
  # What TFLM itself printed comes before Python's traceback of the failure.
  native = output.split("Traceback (most recent call last)")[0]
  native = [l.strip() for l in native.splitlines()
            if l.strip() and not l.startswith(("W0000", "I0000", "E0000"))]
  ops = _OP_IN_MESSAGE.findall(output)
  reported = list(dict.fromkeys(ops + native[-5:]))
  where = f" TFLM reported: {'; '.join(reported)}." if reported else ""
  tail = "\n".join(output.strip().splitlines()[-15:])
  return (f"The TFLM interpreter {how}.{where} Last output:\n{tail}")


def measure_arena(tflite_bytes: bytes,
                  inputs: Optional[Sequence[np.ndarray]] = None,
                  arena_size: Optional[int] = None,
                  backend: Optional[str] = None) -> ArenaReport:
  """Arena bytes TFLM's recording allocator reports after one invoke.

  ``inputs`` default to zeros of each input's shape and type (the arena does
  not depend on values; a train step then performs one update, irrelevant
  here).
  """
  check_intact(tflite_bytes)
  if inputs is None:
    inputs = [np.zeros(t.shape, t.numpy_dtype)
              for t in reader.inputs(tflite_bytes)]
  return run_model(tflite_bytes, [inputs], measure_arena=True,
                   arena_size=arena_size, backend=backend).arena


def train_inputs_order(train_tflite: bytes) -> Tuple[int, int]:
  """(images index, labels index) among the train step's inputs."""
  ins = reader.inputs(train_tflite)
  if len(ins) != 2:
    raise ValueError(f"A train step has 2 inputs; this model has {len(ins)}.")
  images = [i for i, t in enumerate(ins) if len(t.shape) == 4]
  if len(images) != 1:
    raise ValueError("A train step's inputs are images [B,H,W,C] and labels "
                     f"[B]; got shapes {[t.shape for t in ins]}.")
  return images[0], 1 - images[0]


def run_train_steps(train_tflite: bytes,
                    batches: Iterable[Tuple[np.ndarray, np.ndarray]], *,
                    read_params: bool = True, measure_arena: bool = False,
                    arena_size: Optional[int] = None,
                    backend: Optional[str] = None,
                    skip_non_finite: bool = True) -> TrainRun:
  """Runs one TFLM invoke (= one SGD step) per (images, labels) batch.

  Images are float in [0, 1]; a graph with int8 images (an int8 kernel-flavor
  lowering) gets them quantized with its input's scale and zero point.
  Returns the loss of each step, the trained parameters after the last step
  (``read_params``; by Keras weight name, in the Keras layout) and
  optionally the measured arena.

  Every batch is checked first (finite pixels, labels in [0, classes)):
  ValueError naming the batch, before TFLM runs. With ``skip_non_finite``, a
  step whose loss or update is not finite is skipped (its update is not
  applied, the parameters stay finite), logged as a warning and listed in
  ``TrainRun.skipped_steps``; see :mod:`tflite_tl.tflm.skipped_updates`.
  A train step skips a non-finite loss's update by itself, in TFLM as on
  the board (both kernel flavors); the runner then only reports it (and
  replays only if a parameter read back is not finite, or for a graph
  lowered without that guard).
  """
  check_intact(train_tflite, "train step")
  image_index, label_index = train_inputs_order(train_tflite)
  image_input = reader.inputs(train_tflite)[image_index]
  classes = train_inputs.num_classes(train_tflite)
  steps = []
  for k, (images, labels) in enumerate(batches):
    train_inputs.check_batch(k, images, labels, image_input.shape, classes)
    step = [None, None]
    step[image_index] = encode_images(images, image_input)
    step[label_index] = np.asarray(labels, np.int32)
    steps.append(step)
  if not steps:
    raise ValueError("run_train_steps needs at least one (images, labels) "
                     "batch.")
  read = read_params or skip_non_finite

  def run(indices, arena=False):
    result = run_model(train_tflite, [steps[i] for i in indices],
                       measure_arena=arena, read_variables=read,
                       arena_size=arena_size, backend=backend)
    losses = np.array([float(np.asarray(o[0]).reshape(-1)[0])
                       for o in result.outputs], np.float64)
    return losses, result.variables, result.arena

  losses, params, arena = run(range(len(steps)), measure_arena)
  skipped = []
  # A step lowered today skips its own update on a non-finite loss (the
  # builtin flavor selects the old value of every variable; in the kernel
  # flavor TL_SOFTMAX_XENT outputs a zero gradient, which every TL update
  # applies as no step): report those steps, no replay. Non-finite
  # parameters (an update that overflows) still need the replay, and so
  # does a graph lowered without the guard.
  if (skip_non_finite and skipped_updates.all_finite(params)
      and skipped_updates.skips_by_itself(train_tflite)):
    skipped = [int(k) for k in np.flatnonzero(~np.isfinite(losses))]
  elif skip_non_finite and not (np.all(np.isfinite(losses))
                                and skipped_updates.all_finite(params)):
    losses, params, skipped = skipped_updates.replay_skipping(
        lambda indices: run(indices)[:2], len(steps), losses, params,
        lambda: _initial_readouts(train_tflite))
  for k in skipped:
    log.warning(
        "train step %d: the %s is not finite (loss %s); its update was "
        "skipped, the parameters stay finite. Lower the learning rate.", k,
        "loss" if not np.isfinite(losses[k]) else "update",
        f"{losses[k]:g}")
  if not read_params:
    params = {}
  elif tl_params.is_tl_graph(train_tflite):
    params = tl_params.params_from_variables(train_tflite, params)
  return TrainRun(losses, params, arena, tuple(skipped))


def _initial_readouts(train_tflite: bytes) -> Dict[str, np.ndarray]:
  """The variables as a run of no step leaves them: their initial values."""
  values = reader.initial_values(train_tflite)
  return {name: values[name] for name in reader.variable_readouts(
      train_tflite)}


def encode_images(images: np.ndarray, tensor) -> np.ndarray:
  """Float images in [0, 1] in the input tensor's type: as they are for a
  float input, quantized as TFLM's QUANTIZE would (the quotient in float32,
  rounded half away from zero, clamped) for int8.

  An int8 array for an int8 input is already quantized (the int8 inference
  model's callers quantize with its own input scale) and is passed as it is:
  quantizing its codes again would saturate nearly every pixel.
  """
  if tensor.dtype == "INT8" and np.asarray(images).dtype == np.int8:
    return np.asarray(images)
  images = np.asarray(images, np.float32)
  if tensor.dtype != "INT8":
    return images
  q = (images / np.float32(tensor.scale)).astype(np.float64)
  q = np.sign(q) * np.floor(np.abs(q) + 0.5) + tensor.zero_point
  return np.clip(q, -128, 127).astype(np.int8)
