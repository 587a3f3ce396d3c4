"""One flash image for several models: each constant stored once, every
model still reading exactly its own constants in TFLM."""
import numpy as np
import pytest

import tflite_fixtures as fx
from tflite_tl.flatbuffer import reader
from tflite_tl.flatbuffer import shared_weights
from tflite_tl.lower import quantize
from tflite_tl.tflm import runner


@pytest.fixture(scope="module")
def models():
  m = fx.TinyStep()
  train = fx.convert(m, m.train_step)
  predict = fx.convert(m, m.predict)
  int8 = quantize.quantize_int8(fx.keras_classifier(),
                                fx.calibration_images())
  return train, predict, int8


@pytest.fixture(scope="module")
def lowered_tiny():
  """train and predict of the `tiny` backbone (TinyTL-B, 16 px): the same
  frozen float weights in both."""
  from tflite_tl import models as models_lib
  from tflite_tl import rewrite
  from tflite_tl.lower.lowering import lower_model
  backbone = models_lib.get_model("tiny", resolution=16, input_channels=1)
  rewritten = rewrite.apply_method(backbone, "tinytl_b", num_classes=3,
                                   seed=0)
  lo = lower_model(rewritten, batch_size=2, learning_rate=0.05)
  return lo.train_tflite, lo.predict_tflite


@pytest.fixture(scope="module")
def linked(lowered_tiny, models):
  return shared_weights.link(list(lowered_tiny) + [models[2]])


def test_image_is_smaller_and_models_are_aligned(lowered_tiny, linked):
  # train and predict carry the same float weights: they are stored once.
  train, predict = lowered_tiny
  assert linked.saved_bytes > 0.5 * min(len(train), len(predict)) - 8192
  assert len(linked.image) < linked.original_bytes
  for offset, length in zip(linked.offsets, linked.lengths):
    assert offset % shared_weights.ALIGNMENT == 0
    assert bytes(linked.image[offset + 4:offset + 8]) == reader.IDENTIFIER
    assert length < len(linked.image) - offset
  assert linked.pool_offset >= linked.offsets[-1] + linked.lengths[-1]


def test_every_model_reads_its_own_constants(lowered_tiny, models, linked):
  originals = list(lowered_tiny) + [models[2]]
  shared_weights.check(linked, originals)
  for i, m in enumerate(originals):
    got, want = reader.model_info(linked.model(i)), reader.model_info(m)
    assert (got.inputs, got.outputs, got.variables) == (
        want.inputs, want.outputs, want.variables)


def test_small_models_are_only_concatenated(models):
  image = shared_weights.link(list(models))
  assert image.pool_bytes == 0
  assert len(image.image) == sum((len(m) + 15) // 16 * 16 for m in models)
  shared_weights.check(image, models)


def test_pooled_data_is_aligned(linked):
  image = linked.image
  root = reader.root(linked.model(0))
  for i in range(root.BuffersLength()):
    tab = root.Buffers(i)._tab
    o = tab.Offset(4)
    if o and tab.VectorLen(o) >= shared_weights.MIN_POOLED_BYTES:
      assert tab.Vector(o) >= linked.pool_offset - linked.offsets[0]
      assert (linked.offsets[0] + tab.Vector(o)) % 16 == 0
  assert len(image) % 16 == 0


def test_check_rejects_a_model_that_reads_other_constants(
    lowered_tiny, models, linked):
  train, predict = lowered_tiny
  with pytest.raises(ValueError, match="does not read its own constants"):
    shared_weights.check(linked, [predict, train, models[2]])


def test_linking_is_deterministic(lowered_tiny, models, linked):
  again = shared_weights.link(list(lowered_tiny) + [models[2]])
  assert again.image == linked.image


def test_linked_models_run_bit_identical_in_tflm(lowered_tiny, models,
                                                 linked):
  (train, predict), int8 = lowered_tiny, models[2]
  rng = np.random.default_rng(0)
  image = rng.random((1, 16, 16, 1), dtype=np.float32)
  for i, original in ((1, predict),):
    want = runner.run_model(original, [[image]]).outputs
    got = runner.run_model(linked.model(i), [[image]]).outputs
    assert all(np.array_equal(a, b) for a, b in zip(want[0], got[0]))
  q8 = (np.round(rng.random((1,) + fx.IMAGE) * 255) - 128).astype(np.int8)
  if reader.inputs(int8)[0].dtype == "INT8":
    q = q8
    want = runner.run_model(int8, [[q]]).outputs
    got = runner.run_model(linked.model(2), [[q]]).outputs
    assert all(np.array_equal(a, b) for a, b in zip(want[0], got[0]))
  images_at, labels_at = runner.train_inputs_order(train)
  step = [None, None]
  step[images_at] = rng.random((2, 16, 16, 1), dtype=np.float32)
  step[labels_at] = np.array([0, 2], np.int32)
  want = runner.run_model(train, [step] * 3).outputs
  got = runner.run_model(linked.model(0), [step] * 3).outputs
  assert all(np.array_equal(a, b) for s, t in zip(want, got)
             for a, b in zip(s, t))
