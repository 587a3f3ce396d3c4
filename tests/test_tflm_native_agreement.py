"""The native TFLM runner agrees with the tflite_micro wheel on builtin-only
models: the lowered train step of `tiny` and an int8 inference model give
bit-identical outputs and parameters, with the same planned arena head.
(BENCHMARKS.md: `python -m benchmarks.tflm_backends`.)"""
import numpy as np
import pytest

import tflite_fixtures as fx
from tflite_tl.lower import quantize
from tflite_tl.lower import lower_model
from tflite_tl.verify import check as verify_check
from tflite_tl.verify import train_step as verify_lib
from tflite_tl.tflm.backend_compare import compare_backends
from tflite_tl.tflm.backend_compare import to_markdown
from tflite_tl.tflm.runner import train_inputs_order

_RESOLUTION, _BATCH, _STEPS = 32, 2, 4


@pytest.fixture(scope="module")
def tiny_train_steps():
  config = verify_check.VerifyConfig(model="tiny", method="tinytl_lb",
                                   resolution=_RESOLUTION, batch=_BATCH)
  model, _ = verify_check.build_model(config)
  train = lower_model(model, batch_size=_BATCH,
                      learning_rate=0.01).train_tflite
  images, labels = train_inputs_order(train)
  steps = []
  for x, y in verify_lib.random_batches(0, _STEPS, _BATCH,
                                        (_RESOLUTION, _RESOLUTION, 1), 10):
    step = [None, None]
    step[images], step[labels] = x, np.asarray(y, np.int32)
    steps.append(step)
  return train, steps


def test_train_step_is_bit_identical(native_runner, tiny_train_steps):
  del native_runner
  result = compare_backends("tiny tinytl_lb train step", *tiny_train_steps)
  print(to_markdown([result]))
  assert result.bit_identical, result
  assert result.arrays > _STEPS  # losses and the trained parameters
  assert result.wheel.head == result.native.head


def test_int8_inference_is_bit_identical(native_runner):
  del native_runner
  int8 = quantize.quantize_int8(fx.keras_classifier(),
                                fx.calibration_images(8))
  rs = np.random.RandomState(1)
  steps = [[rs.randint(-128, 128, (1,) + fx.IMAGE).astype(np.int8)]
           for _ in range(4)]
  result = compare_backends("int8 classifier", int8, steps)
  print(to_markdown([result]))
  assert result.bit_identical, result
  assert result.wheel.head == result.native.head
