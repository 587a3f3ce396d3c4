"""Runs a .tflite in the tflite_micro interpreter; executed in a subprocess.

Usage: ``python path/to/_worker.py REQUEST_DIR`` (by path, so that neither
this package nor TensorFlow is imported; ``python -m tflite_tl.tflm._worker``
works too but imports TensorFlow through the package). The directory holds
``model.tflite`` (the model to run), ``measured.tflite`` (the model whose
arena to measure: the same one without the extra variable outputs) and
``request.npz`` (see :mod:`tflite_tl.tflm.runner`); the
worker writes ``result.npz`` and, for arena measurements, ``allocations.txt``.
It is a separate process because TFLM aborts the whole process on some models;
the parent turns such a crash into an error.
"""
import json
import os
import sys

import numpy as np


def _capture_fd_output(path, fn):
  """Runs ``fn`` with the C-level stdout and stderr redirected to ``path``.

  TFLM prints through the C runtime, which Python's sys.stdout/stderr
  redirection does not see, so the file descriptors themselves are swapped.
  """
  sys.stdout.flush()
  sys.stderr.flush()
  saved = [os.dup(1), os.dup(2)]
  with open(path, "wb") as sink:
    os.dup2(sink.fileno(), 1)
    os.dup2(sink.fileno(), 2)
    try:
      fn()
    finally:
      sys.stdout.flush()
      sys.stderr.flush()
      os.dup2(saved[0], 1)
      os.dup2(saved[1], 2)
      for fd in saved:
        os.close(fd)


def _run(request_dir):
  # Imported here: loading the TFLM runtime is this process's job; the
  # module's helpers import without it.
  from tflite_micro.python.tflite_micro import runtime  # pylint: disable=import-outside-toplevel
  with open(os.path.join(request_dir, "model.tflite"), "rb") as f:
    model = f.read()
  request = np.load(os.path.join(request_dir, "request.npz"))
  options = json.loads(str(request["options"]))
  num_inputs = options["num_inputs"]
  steps = options["steps"]
  arena_size = options["arena_size"]
  result = {}

  if options["measure_arena"]:
    with open(os.path.join(request_dir, "measured.tflite"), "rb") as f:
      measured = f.read()
    interpreter = runtime.Interpreter.from_bytes(
        measured, arena_size=arena_size,
        intrepreter_config=runtime.InterpreterConfig.kAllocationRecording)
    for i in range(num_inputs):
      interpreter.set_input(request[f"in{i}_0"], i)
    interpreter.invoke()
    _capture_fd_output(os.path.join(request_dir, "allocations.txt"),
                       interpreter.print_allocations)

  if steps:
    interpreter = runtime.Interpreter.from_bytes(
        model, arena_size=arena_size,
        intrepreter_config=runtime.InterpreterConfig.kAllocationRecording)
    num_outputs = options["num_outputs"]
    readouts = options["readout_outputs"]
    for step in range(steps):
      for i in range(num_inputs):
        interpreter.set_input(request[f"in{i}_{step}"], i)
      interpreter.invoke()
      for o in range(num_outputs):
        result[f"out{o}_{step}"] = np.array(interpreter.get_output(o))
    if readouts:
      # The readout outputs are READ_VARIABLE results, i.e. the values at the
      # start of an invoke: one more invoke exposes the variables as they were
      # after the last step.
      for i in range(num_inputs):
        interpreter.set_input(request[f"in{i}_{steps - 1}"], i)
      interpreter.invoke()
      for name, index in readouts.items():
        result[f"var:{name}"] = np.array(interpreter.get_output(index))
  np.savez(os.path.join(request_dir, "result.npz"), **result)


def main(argv):
  if len(argv) != 2:
    sys.stderr.write("usage: python _worker.py REQUEST_DIR\n")
    return 2
  _run(argv[1])
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
