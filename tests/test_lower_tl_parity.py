"""Kernel-flavor train steps in real TFLM (the native runner) against their
TF references: float and int8 steps exact over 20 steps, and a graph with a
deliberately wrong int8 scale fails the same check."""
import numpy as np
import pytest

import tflite_tl as tl
from tflite_tl.flatbuffer import edit
from tflite_tl.lower import lower_model
from tflite_tl.verify import train_step as ts

_STEPS, _BATCH = 20, 2


def _lowered(method, precision, batches, qas=True):
  options = {}
  if method == "tinytrain":  # selects on a labelled support set
    x, y = batches[0]
    options["support"] = (x, y)
  model = tl.apply_method(tl.load_pretrained("tiny"), method, num_classes=10,
                          **options)
  return lower_model(model, batch_size=_BATCH, learning_rate=0.01,
                     kernels="tl", precision=precision, qas=qas,
                     calibration_images=np.concatenate(
                         [x for x, _ in batches]))


@pytest.fixture(scope="module")
def batches():
  return ts.random_batches(0, _STEPS, _BATCH, (32, 32, 1), 10)


@pytest.mark.parametrize("method,precision,qas", [
    ("tinytl_b", "float", True), ("tinytl_b", "int8", True),
    ("ft_last", "int8", True),
    # Channel-sparse kernels: int8 slices re-quantized from float masters.
    pytest.param("tinytrain", "float", True, marks=pytest.mark.slow),
    ("tinytrain", "int8", True),
    pytest.param("sparse_update", "int8", True, marks=pytest.mark.slow),
    ("sparse_update", "int8", False)])
def test_train_step_matches_tf(native_runner, batches, method, precision,
                               qas):
  del native_runner
  result = ts.compare(_lowered(method, precision, batches, qas), batches,
                      perturbed_references=1)
  assert result["parity"] == "exact", result
  assert result["arena"].total > 0


def _scale_tensor(tflite_bytes: bytes, name: str, factor: float) -> bytes:
  model = edit.unpack(tflite_bytes)
  for t in model.subgraphs[0].tensors:
    tensor_name = t.name.decode() if isinstance(t.name, bytes) else t.name
    if tensor_name == name:
      t.quantization.scale = [s * factor for s in t.quantization.scale]
      return edit.pack(model)
  raise AssertionError(f"no tensor {name}")


def test_a_wrong_int8_scale_fails(native_runner, batches):
  del native_runner
  lowered = _lowered("tinytl_b", "int8", batches)
  lowered.train_tflite = _scale_tensor(lowered.train_tflite, "block1_expand",
                                       1.5)
  result = ts.compare(lowered, batches, perturbed_references=1)
  assert result["parity"] == "failed"
