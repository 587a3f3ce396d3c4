"""The native TFLM runner agrees with the tflite_micro wheel on builtin-only
models: the lowered train step of `tiny` and an int8 inference model give
bit-identical outputs and parameters. The arena figures of both are printed
(see BENCHMARKS.md, "Native TFLM runner vs the tflite_micro wheel")."""
import numpy as np
import pytest

import tflite_fixtures as fx
from tflite_tl.lower import quantize
from tflite_tl.lower import lower_model
from tflite_tl.verify import check as verify_check
from tflite_tl.verify import train_step as verify_lib
from tflite_tl.tflm import measure_arena
from tflite_tl.tflm import run_model
from tflite_tl.tflm import run_train_steps

_RESOLUTION, _BATCH, _STEPS = 32, 2, 4


@pytest.fixture(scope="module")
def tiny_train_step():
  config = verify_check.VerifyConfig(model="tiny", method="tinytl_lb",
                                   resolution=_RESOLUTION, batch=_BATCH)
  model, _ = verify_check.build_model(config)
  lowered = lower_model(model, batch_size=_BATCH, learning_rate=0.01)
  batches = verify_lib.random_batches(0, _STEPS, _BATCH,
                                      (_RESOLUTION, _RESOLUTION, 1), 10)
  return lowered.train_tflite, batches


def _arena_line(what, wheel, native):
  return (f"{what}: wheel total/head/tail {wheel.total}/{wheel.head}/"
          f"{wheel.tail} B, native {native.total}/{native.head}/{native.tail}"
          f" B (native - wheel: {native.total - wheel.total:+d} B)")


def test_train_step_is_bit_identical(native_runner, tiny_train_step):
  del native_runner
  train, batches = tiny_train_step
  wheel = run_train_steps(train, batches, measure_arena=True, backend="wheel")
  native = run_train_steps(train, batches, measure_arena=True,
                           backend="native")
  assert np.array_equal(wheel.losses, native.losses)
  assert sorted(wheel.params) == sorted(native.params) and wheel.params
  for name, value in wheel.params.items():
    assert np.array_equal(value, native.params[name]), name
  assert wheel.arena.head == native.arena.head
  print(_arena_line("tiny tinytl_lb train step", wheel.arena, native.arena))


def test_int8_inference_is_bit_identical(native_runner):
  del native_runner
  images = fx.calibration_images(8)
  int8 = quantize.quantize_int8(fx.keras_classifier(), images)
  rs = np.random.RandomState(1)
  steps = [[rs.randint(-128, 128, (1,) + fx.IMAGE).astype(np.int8)]
           for _ in range(4)]
  wheel = run_model(int8, steps, backend="wheel").outputs
  native = run_model(int8, steps, backend="native").outputs
  for w, n in zip(wheel, native):
    assert w[0].dtype == n[0].dtype == np.int8
    assert np.array_equal(w[0], n[0])
  print(_arena_line("int8 classifier", measure_arena(int8, backend="wheel"),
                    measure_arena(int8, backend="native")))
