"""The native TFLM backend: TFLM built from ``$TFLM_ROOT`` plus our TL_* ops.

The ``tflite_micro`` wheel runs builtin ops only, and zero-fills variable
tensors. Models with TL_* custom ops or variable tensors (``is_variable``)
run instead in ``tl_tflm_runner`` (``csrc/tl_tflm_runner.cc``), built from
``$TFLM_ROOT`` with every op TFLM registers plus ``AddTrainingOps``, in a
subprocess, with the same results as :mod:`tflite_tl.tflm.runner`:
a crash or failure becomes :class:`~tflite_tl.tflm.runner.TflmRuntimeError`
quoting what TFLM printed.

Backends: ``"auto"`` (native when the model needs it, else the wheel),
``"wheel"``, ``"native"``, or ``"cortex-m4f"``: the same runner built for
Cortex-M4F and booted in QEMU mps2-an386 (:mod:`tflite_tl.tflm.semihosted`),
whose arena figures are the 32-bit target's own (the host's 64-bit pointers
make TFLM's node and tensor structs larger); ``$TFLITE_TL_TFLM_BACKEND`` sets
the default.

Request directory (read by the runner; see the .cc for the format):
``model.tflite``, ``measured.tflite``, ``request.txt``, ``in<i>_<s>.raw``;
it writes ``result.txt``, ``out<o>_<s>.raw``, ``var<k>.raw`` and
``allocations.txt``.
"""
import dataclasses
import os
import pathlib
import subprocess
import tempfile
import threading
from typing import Dict, List, Optional, Sequence

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema


from tflite_tl.flatbuffer import edit
from tflite_tl.flatbuffer import reader
from tflite_tl.tflm import native_build
from tflite_tl.tflm import runner
from tflite_tl.tflm import semihosted
from tflite_tl.tflm import tflm_library
from tflite_tl.tflm.arena import parse_allocations
from tflite_tl.tflm.arena import source_on

BACKENDS = ("auto", "wheel", "native", "cortex-m4f")
# Backends that run tl_tflm_runner, and the target each builds it for.
RUNNER_TARGETS = {"native": "host", "cortex-m4f": "cortex-m4f"}
BACKEND_ENV = "TFLITE_TL_TFLM_BACKEND"
TL_OP_PREFIX = "CUSTOM:TL_"
_TIMEOUT_S = 1800

_NUMPY_TYPES = {"FLOAT32": np.float32, "INT32": np.int32, "INT8": np.int8,
                "UINT8": np.uint8, "INT16": np.int16, "INT64": np.int64,
                "BOOL": np.bool_, "FLOAT16": np.float16,
                "FLOAT64": np.float64, "UINT32": np.uint32}
_SCHEMA_TYPES = {schema.TensorType.FLOAT32: np.float32,
                 schema.TensorType.INT32: np.int32,
                 schema.TensorType.INT8: np.int8,
                 schema.TensorType.UINT8: np.uint8,
                 schema.TensorType.INT16: np.int16,
                 schema.TensorType.INT64: np.int64,
                 schema.TensorType.BOOL: np.bool_}


class NativeRunnerUnavailableError(RuntimeError):
  """A model needs the native TFLM runner, and TFLM_ROOT is not set."""


def native_reasons(tflite_bytes: bytes) -> List[str]:
  """Why the wheel cannot run this model faithfully (empty if it can)."""
  reasons = [f"it uses {op[len('CUSTOM:'):]}" for op in reader.op_counts(tflite_bytes)
             if op.startswith(TL_OP_PREFIX)]
  variables = variable_tensors(tflite_bytes)
  if variables:
    reasons.append(f"it has {len(variables)} variable tensor(s) "
                   f"(is_variable), e.g. {variables[0]!r}")
  return reasons


def variable_tensors(tflite_bytes: bytes) -> List[str]:
  """Names of subgraph 0's tensors with ``is_variable`` set."""
  sg = schema.Model.GetRootAsModel(tflite_bytes, 0).Subgraphs(0)
  return [sg.Tensors(i).Name().decode() for i in range(sg.TensorsLength())
          if sg.Tensors(i).IsVariable()]


def input_dtypes(tflite_bytes: bytes) -> List[np.dtype]:
  sg = schema.Model.GetRootAsModel(tflite_bytes, 0).Subgraphs(0)
  types = []
  for i in sg.InputsAsNumpy():
    kind = sg.Tensors(int(i)).Type()
    if kind not in _SCHEMA_TYPES:
      raise ValueError(f"Input tensor {int(i)} has TFLite type {kind}, which "
                       "the native runner does not feed.")
    types.append(np.dtype(_SCHEMA_TYPES[kind]))
  return types


def select_backend(tflite_bytes: bytes, backend: Optional[str] = None) -> str:
  """"wheel" or "native" for this model. ``backend`` None means
  ``$TFLITE_TL_TFLM_BACKEND`` or "auto"."""
  backend = backend or os.environ.get(BACKEND_ENV) or "auto"
  if backend not in BACKENDS:
    raise ValueError(f"Unknown TFLM backend {backend!r}; use one of "
                     f"{', '.join(BACKENDS)}.")
  if backend == "auto":
    return "native" if native_reasons(tflite_bytes) else "wheel"
  return backend


_BUILD_LOCK = threading.Lock()
_RUNNERS: Dict[tuple, pathlib.Path] = {}


def runner_executable(reasons: Sequence[str] = (),
                      target: str = "host") -> pathlib.Path:
  """The native runner for ``$TFLM_ROOT`` (a host executable, or a
  Cortex-M4F ELF for QEMU), built on first use (minutes) and cached (see
  :mod:`tflite_tl.tflm.native_build`).

  Raises:
    NativeRunnerUnavailableError: TFLM_ROOT is not set.
    TflmBuildError: TFLM or our sources failed to build.
  """
  root = os.environ.get(tflm_library.TFLM_ROOT_ENV)
  if not root:
    what = (f"This model needs TFLM built from source ({'; '.join(reasons)})"
            if reasons else "The native TFLM backend was asked for")
    raise NativeRunnerUnavailableError(
        f"{what}, and "
        f"{tflm_library.TFLM_ROOT_ENV} is not set: export "
        f"{tflm_library.TFLM_ROOT_ENV}=/path/to/tflite-micro (a tflite-micro "
        "source tree with its third-party downloads).")
  with _BUILD_LOCK:
    if (root, target) not in _RUNNERS:
      _RUNNERS[root, target] = native_build.build_runner(root, quiet=False,
                                                         target=target)
    return _RUNNERS[root, target]


@dataclasses.dataclass(frozen=True)
class _Manifest:
  outputs: Dict[int, tuple]  # index -> (dtype, shape)
  variables: List[tuple]  # (k, dtype, shape, name)


def _dims(words: List[str]):
  rank = int(words[0])
  return tuple(int(d) for d in words[1:1 + rank]), words[1 + rank:]


def _read_manifest(path: pathlib.Path) -> _Manifest:
  outputs, variables = {}, []
  for line in path.read_text(encoding="utf-8").splitlines():
    kind, index, type_name, *rest = line.split(" ")
    if type_name not in _NUMPY_TYPES:
      raise runner.TflmRuntimeError(
          f"The native runner returned a {type_name} tensor, which "
          "tflite_tl does not read.")
    shape, rest = _dims(rest)
    if kind == "output":
      outputs[int(index)] = (np.dtype(_NUMPY_TYPES[type_name]), shape)
    else:
      variables.append((int(index), np.dtype(_NUMPY_TYPES[type_name]), shape,
                        " ".join(rest)))
  return _Manifest(outputs, variables)


def _read_raw(path: pathlib.Path, dtype, shape) -> np.ndarray:
  return np.fromfile(path, dtype=dtype).reshape(shape)


def run_model(tflite_bytes: bytes, steps_inputs: Sequence[Sequence[np.ndarray]],
              *, measure_arena: bool = False, read_variables: bool = False,
              arena_size: Optional[int] = None,
              target: str = "host") -> "runner.RunResult":
  """:func:`tflite_tl.tflm.run_model` in the native runner (``target``
  "host", or "cortex-m4f" in QEMU).

  With ``read_variables`` the result's ``variables`` hold every resource
  variable (by shared name, read through extra outputs as in the wheel
  backend) and every variable tensor (by tensor name) after the last step.
  """
  ins = reader.inputs(tflite_bytes)
  dtypes = input_dtypes(tflite_bytes)
  num_outputs = len(reader.outputs(tflite_bytes))
  steps_inputs = [list(s) for s in steps_inputs]
  if not steps_inputs:
    raise ValueError("run_model needs at least one step of inputs.")
  for values in steps_inputs:
    if len(values) != len(ins):
      raise ValueError(f"The model has {len(ins)} inputs "
                       f"({[i.name for i in ins]}); got {len(values)}.")
    for value, info, dtype in zip(values, ins, dtypes):
      value = np.asarray(value)
      if tuple(value.shape) != tuple(info.shape):
        raise ValueError(f"Input {info.name!r} has shape "
                         f"{list(info.shape)}; got {list(value.shape)}.")
      if value.dtype != dtype:
        raise ValueError(f"Input {info.name!r} is {dtype.name}; got "
                         f"{value.dtype.name} (convert it with "
                         f"astype(np.{dtype.name})).")
  # Inputs are checked first: a wrong call fails the same way with or
  # without a TFLM build.
  executable = runner_executable(native_reasons(tflite_bytes), target)
  readouts, run_bytes = {}, tflite_bytes
  if read_variables:
    tensors = reader.variable_readouts(tflite_bytes)
    if tensors:
      run_bytes = edit.with_extra_outputs(tflite_bytes, tensors.values())
      readouts = {name: num_outputs + k for k, name in enumerate(tensors)}
  arena_size = arena_size or runner.default_arena_size(tflite_bytes)
  if target != "host":
    # The firmware's heap holds the model and one step's inputs beside the
    # arena; an arena beyond it would only fail to allocate.
    arena_size = min(arena_size, semihosted.max_arena_bytes(
        max(len(run_bytes), len(tflite_bytes)),
        sum(np.asarray(v).nbytes for v in steps_inputs[0])))
  with tempfile.TemporaryDirectory(prefix="tflite_tl_native_") as tmp:
    tmp = pathlib.Path(tmp)
    (tmp / "model.tflite").write_bytes(run_bytes)
    (tmp / "measured.tflite").write_bytes(tflite_bytes)
    for step, values in enumerate(steps_inputs):
      for i, value in enumerate(values):
        (tmp / f"in{i}_{step}.raw").write_bytes(
            np.ascontiguousarray(value).tobytes())
    (tmp / "request.txt").write_text(
        f"arena_size {arena_size}\nsteps {len(steps_inputs)}\n"
        f"extra_invoke {int(bool(readouts))}\nmeasure {int(measure_arena)}\n"
        f"read_variables {int(read_variables)}\n")
    _run(executable, tmp, target)
    manifest = _read_manifest(tmp / "result.txt")
    outputs = [[_read_raw(tmp / f"out{o}_{s}.raw", *manifest.outputs[o])
                for o in range(num_outputs)]
               for s in range(len(steps_inputs))]
    variables = {}
    last = len(steps_inputs)  # the extra invoke's outputs
    for name, o in readouts.items():
      variables[name] = _read_raw(tmp / f"out{o}_{last}.raw",
                                  *manifest.outputs[o])
    for k, dtype, shape, name in manifest.variables:
      variables[name] = _read_raw(tmp / f"var{k}.raw", dtype, shape)
    arena = None
    if measure_arena:
      arena = parse_allocations((tmp / "allocations.txt").read_text(
          encoding="utf-8", errors="replace"))
      if target != "host":
        arena = dataclasses.replace(arena,
                                    source=source_on(f"{target} in QEMU"))
  return runner.RunResult(outputs, variables, arena)


def _run(executable: pathlib.Path, request_dir: pathlib.Path,
         target: str = "host") -> None:
  cmd = [str(executable), str(request_dir)]
  if target != "host":
    try:
      cmd = semihosted.qemu_command(str(executable), str(request_dir))
    except FileNotFoundError as e:
      raise NativeRunnerUnavailableError(str(e)) from e
  try:
    proc = subprocess.run(cmd, capture_output=True, timeout=_TIMEOUT_S,
                          check=False)
  except subprocess.TimeoutExpired as e:
    raise runner.TflmRuntimeError(
        f"The {target} TFLM runner did not finish within {e.timeout} s."
    ) from e
  output = (proc.stdout + proc.stderr).decode("utf-8", errors="replace")
  status = proc.returncode
  if target != "host":
    status = semihosted.exit_status(proc.stdout.decode("utf-8", "replace"))
    if status < 0:
      tail = "\n".join(output.strip().splitlines()[-15:])
      raise runner.TflmRuntimeError(
          f"The {target} TFLM runner stopped in QEMU before its exit line (a "
          f"fault in the firmware; QEMU exit status {proc.returncode}). Last "
          f"output:\n{tail}")
  if status != 0:
    raise runner.TflmRuntimeError(runner.describe_failure(status, output))
