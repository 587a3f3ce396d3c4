"""Device-in-the-loop check: the exported train.tflite trains itself in TFLM.

The board's app (``tl_app.cc``) keeps up to ``kMaxSamples`` labelled images
as bytes and, on ``T<epochs>``, runs ``epochs`` passes of its train step over
them: batches walk the buffer from a start that rotates by one per epoch
(sample ``(first + b + e) % n``), each byte scaled by 1/255 in float32. This
module replays exactly that, with the exported ``train.tflite`` in the real
TFLM interpreter, and measures held-out accuracy with the exported predict
model (also in TFLM) before and after: the accuracy of the device's own
train step, not of host training.
"""
import dataclasses
from typing import List, Sequence, Tuple

import numpy as np

from tflite_tl.flatbuffer import reader
from tflite_tl.lower import read_params
from tflite_tl.lower import write_params
from tflite_tl.tflm import run_train_steps
from tflite_tl.verify.errors import round_figure
from tflite_tl.verify.inference import run_batch1

_BYTE_SCALE = np.float32(1.0 / 255.0)


def to_device_bytes(images: np.ndarray) -> np.ndarray:
  """Images in [0, 1] as the bytes the board receives and stores."""
  return np.clip(np.round(np.asarray(images, np.float32) * 255.0), 0,
                 255).astype(np.uint8)


def from_device_bytes(raw: np.ndarray) -> np.ndarray:
  """The float32 input the board computes from stored bytes."""
  return raw.astype(np.float32) * _BYTE_SCALE


def app_batches(raw: np.ndarray, labels: np.ndarray, batch: int,
                epochs: int) -> List[Tuple[np.ndarray, np.ndarray]]:
  """The (images, labels) of every train step of ``T<epochs>`` on a buffer
  holding ``raw`` (uint8 NHWC) and ``labels``, in the app's order."""
  n = len(raw)
  if n < batch:
    raise ValueError(f"The app needs at least {batch} samples (one batch) "
                     f"to train; the buffer holds {n}.")
  steps = []
  for e in range(epochs):
    for first in range(0, n, batch):
      k = [(first + b + e) % n for b in range(batch)]
      steps.append((from_device_bytes(raw[k]),
                    np.asarray(labels, np.int32)[k]))
  return steps


def balanced_pick(labels: np.ndarray, count: int,
                  exclude: Sequence[int] = ()) -> np.ndarray:
  """Indices of ``count`` samples taken round-robin over the classes (in
  index order within a class), as a user collecting a few of each would;
  ``exclude`` indices are never taken."""
  labels = np.asarray(labels).reshape(-1)
  excluded = set(int(i) for i in exclude)
  by_class = [[i for i in np.nonzero(labels == c)[0] if i not in excluded]
              for c in np.unique(labels)]
  picked = []
  while len(picked) < count and any(by_class):
    for pool in by_class:
      if pool and len(picked) < count:
        picked.append(pool.pop(0))
  return np.asarray(picked, np.int64)


def split_test_images(labels: np.ndarray, seed: int, buffer_size: int,
                      held_out: int) -> Tuple[np.ndarray, np.ndarray]:
  """(board buffer, held-out) indices into a test split.

  A seeded order (datasets may be sorted by label); the buffer takes
  ``buffer_size`` images round-robin over the classes, at most half the
  split; held out are the next ``held_out`` images of the order not in the
  buffer (sorted). ``buffer_size`` 0 gives an empty buffer.
  """
  labels = np.asarray(labels).reshape(-1)
  order = np.random.RandomState(seed).permutation(len(labels))
  buffer = np.zeros(0, np.int64)
  if buffer_size:
    buffer = order[balanced_pick(labels[order],
                                 min(buffer_size, len(order) // 2))]
  taken = set(buffer.tolist())
  rest = [i for i in order if i not in taken][:held_out]
  return buffer, np.sort(np.asarray(rest, np.int64))


@dataclasses.dataclass(frozen=True)
class DeviceTraining:
  """What ``T<epochs>`` on a full sample buffer does, measured in TFLM."""
  samples: int
  classes_in_buffer: int
  epochs: int
  batch: int
  steps: int
  epoch_losses: Tuple[float, ...]
  held_out_images: int
  accuracy_before: float
  accuracy_after: float
  # On the buffer's own samples: what the device step learnt.
  buffer_accuracy_before: float
  buffer_accuracy_after: float

  def to_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d["epoch_losses"] = [round_figure(v, 5) for v in self.epoch_losses]
    for k in ("accuracy_before", "accuracy_after", "buffer_accuracy_before",
              "buffer_accuracy_after"):
      d[k] = round_figure(d[k], 4)
    d["source"] = "device train step (train.tflite in TFLM on the host)"
    return d


def _accuracy(predict_tflite: bytes, raw: np.ndarray,
              labels: np.ndarray) -> float:
  logits = run_batch1(predict_tflite, from_device_bytes(raw))
  return float(np.mean(logits.argmax(1) == np.asarray(labels).reshape(-1)))


def device_training(train_tflite: bytes, predict_tflite: bytes,
                    samples: Tuple[np.ndarray, np.ndarray],
                    held_out: Tuple[np.ndarray, np.ndarray], *, batch: int,
                    epochs: int) -> DeviceTraining:
  """Fills the app's buffer with ``samples`` (images in [0, 1], labels),
  trains ``epochs`` epochs with ``train_tflite`` in TFLM the way the app
  does, and scores the predict model on ``held_out`` before and after."""
  raw, labels = to_device_bytes(samples[0]), np.asarray(samples[1])
  held_raw, held_labels = to_device_bytes(held_out[0]), held_out[1]
  steps = app_batches(raw, labels, batch, epochs)
  before = _accuracy(predict_tflite, held_raw, held_labels)
  buffer_before = _accuracy(predict_tflite, raw, labels)
  run = run_train_steps(train_tflite, steps, read_params=True)
  # Resource variables of a builtin-flavor model, variable tensors of a
  # kernel-flavor one: the parameters the board copies after training.
  names = reader.variable_names(predict_tflite) or list(
      read_params(predict_tflite))
  trained = write_params(predict_tflite, {n: run.params[n] for n in names})
  after = _accuracy(trained, held_raw, held_labels)
  buffer_after = _accuracy(trained, raw, labels)
  per_epoch = np.asarray(run.losses).reshape(epochs, -1).mean(axis=1)
  return DeviceTraining(
      samples=int(len(raw)), classes_in_buffer=int(len(np.unique(labels))),
      epochs=int(epochs), batch=int(batch), steps=len(steps),
      epoch_losses=tuple(float(v) for v in per_epoch),
      held_out_images=int(len(held_raw)), accuracy_before=before,
      accuracy_after=after, buffer_accuracy_before=buffer_before,
      buffer_accuracy_after=buffer_after)
