"""Checks of what a train step is fed, before TFLM sees it.

A NaN pixel or an out-of-range label does not make TFLM fail: it trains on
it (a NaN loss poisons every parameter; label 12 of a 10-class step becomes
an all-zero target, silently). Every batch is checked here instead, and the
error names the batch, the first bad value and the fix.
"""
from typing import Optional, Sequence

import numpy as np

from tflite_tl.flatbuffer import reader

# Ops whose first input is the logits [B, classes] of a train step: the
# builtin flavor's LOG_SOFTMAX, the TL flavor's fused loss.
_LOSS_OPS = ("LOG_SOFTMAX", "CUSTOM:TL_SOFTMAX_XENT")


def num_classes(train_tflite: bytes) -> Optional[int]:
  """Classes of a train step (the width of its logits), None if unknown."""
  for op in _LOSS_OPS:
    for shapes in reader.op_input_shapes(train_tflite, op):
      if shapes and len(shapes[0]) == 2 and shapes[0][-1] > 0:
        return int(shapes[0][-1])
  return None


def check_batch(step: int, images, labels, image_shape: Sequence[int],
                classes: Optional[int]) -> None:
  """Raises ValueError unless ``images`` are finite floats of
  ``image_shape`` and ``labels`` integers in [0, classes)."""
  images = np.asarray(images)
  where = f"run_train_steps: batch {step}"
  if tuple(images.shape) != tuple(image_shape):
    raise ValueError(f"{where}: images have shape {list(images.shape)}; the "
                     f"train step takes {list(image_shape)} (batch, height, "
                     "width, channels).")
  if not np.issubdtype(images.dtype, np.number):
    raise ValueError(f"{where}: images have dtype {images.dtype}; pass float "
                     "images in [0, 1].")
  finite = np.isfinite(images)
  if not finite.all():
    where_bad = tuple(int(i) for i in np.argwhere(~finite)[0])
    raise ValueError(
        f"{where}: image {where_bad[0]} has a non-finite pixel "
        f"({images[where_bad]} at {list(where_bad[1:])}); a NaN or inf "
        "input makes the loss and every updated parameter NaN. Replace or "
        "drop the image (np.nan_to_num, or check the data pipeline).")
  labels = np.asarray(labels)
  if labels.shape != (image_shape[0],):
    raise ValueError(f"{where}: labels have shape {list(labels.shape)}; the "
                     f"train step takes [{image_shape[0]}] class indices.")
  if labels.size and (not np.all(np.isfinite(labels.astype(np.float64)))
                      or np.any(np.asarray(labels, np.float64) % 1)):
    raise ValueError(f"{where}: labels {labels.tolist()} are not integer "
                     "class indices.")
  high = classes if classes is not None else np.iinfo(np.int32).max
  bad = [int(l) for l in labels.astype(np.int64) if not 0 <= l < high]
  if bad:
    span = f"[0, {classes - 1}]" if classes is not None else ">= 0"
    raise ValueError(
        f"{where}: label {bad[0]} is out of range; this train step has "
        f"{classes} classes, so labels must be in {span}. Relabel the "
        "samples 0..classes-1 (or lower the model for more classes).")
