"""Host training loop: exactly ``model.trainable_weights`` change, nothing else.

A custom loop instead of ``model.fit``: the gradient is taken with respect to
``model.trainable_weights`` only (the set the rewrite passes define and the
device trains), so frozen weights cannot move.

BatchNormalization. ``training=False`` (the default) calls the model in
inference mode: every BatchNormalization applies its moving statistics, which
stay bit-identical, Dropout is off, and the host optimises the same function
the lowered train step optimises on the device. ``training=True`` is for
pretraining from scratch: Dropout is on and stock Keras BatchNormalization
layers that are trainable normalise with batch statistics and update their
moving statistics (non-trainable variables that then change);
``tflite_tl.layers.BatchNormalization`` always uses moving statistics. After
a short ``training=True`` run the exponential moving statistics lag the final
weights: call ``recalibrate_batchnorm`` before evaluating or exporting.

Determinism. ``fit`` seeds Python, NumPy and TensorFlow, enables TensorFlow
op determinism (process-wide), and shuffles with a NumPy RandomState derived
from (seed, epoch); two runs with the same inputs and seed give identical
weights. Resuming from a checkpoint reproduces an uninterrupted run exactly
for models without random layers (Dropout draws from TensorFlow's op seeds).
"""
import sys
from typing import Callable, Optional, Tuple, Union

import numpy as np
from absl import logging
from tqdm import tqdm

from tflite_tl._compat import keras, tf
from tflite_tl.train import checkpoint as ckpt
from tflite_tl.train.evaluation import evaluate
from tflite_tl.train.history import History
from tflite_tl.train.losses import softmax_cross_entropy
from tflite_tl.train.optimizers import make_optimizer

# augment(images, rng) -> images: NumPy in, NumPy out, randomness from rng only.
Augment = Callable[[np.ndarray, np.random.RandomState], np.ndarray]


def _check_data(model, x, y, what: str) -> Tuple[np.ndarray, np.ndarray]:
  x = np.asarray(x, np.float32)
  y = np.asarray(y)
  if len(x) != len(y):
    raise ValueError(f"{what}: x has {len(x)} samples but y has {len(y)}.")
  if len(x) == 0:
    raise ValueError(f"{what}: no samples.")
  if not np.issubdtype(y.dtype, np.integer):
    raise ValueError(f"{what}: labels must be integer class indices, got "
                     f"{y.dtype}.")
  expected = tuple(model.input_shape[1:])
  if any(e is not None and e != a for e, a in zip(expected, x.shape[1:])) or (
      len(expected) != x.ndim - 1):
    raise ValueError(f"{what}: images have shape {x.shape[1:]} but model "
                     f"{model.name!r} expects {expected}. Load the data with "
                     "the model's resolution and channels.")
  if not np.all(np.isfinite(x)):
    first = int(np.argwhere(~np.isfinite(x))[0][0])
    raise ValueError(f"{what}: image {first} has NaN or inf pixels; they "
                     "make the loss and every trained weight NaN. Fix or "
                     "drop those images (e.g. np.nan_to_num).")
  num_classes = model.output_shape[-1]
  if y.min() < 0 or y.max() >= num_classes:
    raise ValueError(f"{what}: labels span [{y.min()}, {y.max()}] but model "
                     f"{model.name!r} has {num_classes} outputs.")
  return x, y.astype(np.int64)


class _TrainStep:
  """One SGD/Adam step on a batch; returns (mean loss, number correct).

  A callable object rather than a closure: TensorFlow counts retraces per
  Python code object, and each fit() call legitimately traces its own step.
  """

  def __init__(self, model, optimizer, variables, label_smoothing: float,
               training: bool):
    self._model = model
    self._optimizer = optimizer
    self._variables = variables
    self._label_smoothing = label_smoothing
    self._training = training

  def __call__(self, xb, yb):
    model, variables = self._model, self._variables
    with tf.GradientTape() as tape:
      logits = model(xb, training=self._training)
      loss = softmax_cross_entropy(logits, yb, self._label_smoothing)
      total = (loss + tf.add_n(model.losses)) if model.losses else loss
    grads = tape.gradient(total, variables)
    missing = [v.name for v, g in zip(variables, grads) if g is None]
    if missing:  # Raised while tracing: a Python check, not a graph op.
      raise ValueError(f"Trainable variables {missing} of model {model.name!r} "
                       "do not influence the loss. Freeze them or connect them "
                       "to the output.")
    self._optimizer.apply_gradients(zip(grads, variables))
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int64)
    correct = tf.reduce_sum(tf.cast(tf.equal(predicted, yb), tf.float32))
    return loss, correct


def _progress_bar(total: int, desc: str, enabled: bool):
  return tqdm(total=total, desc=desc, leave=False, unit="batch",
              disable=not (enabled and sys.stderr.isatty()))


def seed_everything(seed: int) -> None:
  """Seeds Python, NumPy and TensorFlow and makes TF ops deterministic."""
  keras.utils.set_random_seed(seed)
  tf.config.experimental.enable_op_determinism()


def fit(model, x, y, *, epochs: int, batch_size: int = 32,
        optimizer: Union[str, "keras.optimizers.Optimizer"] = "sgd",
        learning_rate=None, momentum: float = 0.9,
        label_smoothing: float = 0.0, seed: int = 0,
        validation_data: Optional[Tuple[np.ndarray, np.ndarray]] = None,
        checkpoint_dir: Optional[str] = None, resume: bool = False,
        progress: bool = True, augment: Optional[Augment] = None,
        training: bool = False,
        on_epoch_end: Optional[Callable[[int, History], None]] = None
        ) -> History:
  """Trains ``model.trainable_weights`` on ``(x, y)`` with softmax cross-entropy.

  Args:
    model: a Keras model that outputs logits (N, num_classes).
    x, y: float32 NHWC images in [0, 1] and int class indices.
    epochs: total number of epochs (including ones restored by ``resume``).
    batch_size: samples per step; the last, smaller batch is kept.
    optimizer: "sgd" (with ``momentum``), "adam", or a Keras optimizer.
    learning_rate: step size for "sgd"/"adam" (required for those): a float
      or a ``keras.optimizers.schedules.LearningRateSchedule`` over steps.
    momentum: SGD momentum; 0 is plain SGD, as on the device.
    label_smoothing: epsilon of label smoothing, in [0, 1).
    seed: seeds the batch order, ``augment`` and Dropout (the model's
      weights are already initialised when ``fit`` is called).
    validation_data: optional (x_val, y_val); accuracy after every epoch.
    checkpoint_dir: if set, the state is saved there after every epoch.
    resume: continue from the newest checkpoint in ``checkpoint_dir``.
    progress: show a tqdm bar (only when stderr is a terminal).
    augment: ``augment(images, rng) -> images`` applied to every batch.
    training: the ``training`` flag of the model call; see the module doc.
    on_epoch_end: called with (completed epochs, history) after each epoch,
      e.g. to drive a caller's progress display.

  Returns:
    History with per-epoch mean loss, training accuracy and validation
    accuracy.
  """
  if epochs < 0 or batch_size < 1:
    raise ValueError(f"epochs must be >= 0 and batch_size >= 1, got "
                     f"{epochs!r}, {batch_size!r}.")
  if resume and checkpoint_dir is None:
    raise ValueError("resume=True needs a checkpoint_dir.")
  variables = list(model.trainable_weights)
  if not variables:
    raise ValueError(f"Model {model.name!r} has no trainable weights: nothing "
                     "to train. Choose a method that leaves some trainable.")
  x, y = _check_data(model, x, y, "training data")
  if validation_data is not None:
    validation_data = _check_data(model, *validation_data, "validation data")
  if isinstance(optimizer, str) and learning_rate is None:
    raise ValueError(f"learning_rate is required with optimizer {optimizer!r}.")

  seed_everything(seed)
  opt = make_optimizer(optimizer, learning_rate, momentum)
  opt.build(variables)
  history, start = History(), 0
  if resume:
    found = ckpt.latest(checkpoint_dir)
    if found is not None:
      start, path = found
      history = ckpt.restore(path, model, opt)
      logging.info("Resuming from %s (epoch %d).", path, start)

  step = tf.function(
      _TrainStep(model, opt, variables, label_smoothing, training),
      reduce_retracing=True)
  n = len(x)
  for epoch in range(start, epochs):
    rng = np.random.RandomState([seed, epoch])
    order = rng.permutation(n)
    loss_sum, correct = 0.0, 0.0
    with _progress_bar((n + batch_size - 1) // batch_size,
                       f"epoch {epoch + 1}/{epochs}", progress) as bar:
      for begin in range(0, n, batch_size):
        idx = order[begin:begin + batch_size]
        xb = x[idx] if augment is None else np.asarray(
            augment(x[idx], rng), np.float32)
        loss, right = step(tf.constant(xb), tf.constant(y[idx]))
        loss_sum += float(loss) * len(idx)
        correct += float(right)
        bar.update(1)
        bar.set_postfix(loss=f"{loss_sum / (begin + len(idx)):.4f}")
    val = None if validation_data is None else evaluate(model, *validation_data)
    history.append(loss_sum / n, correct / n, val)
    logging.info("epoch %d/%d loss %.4f acc %.4f val_acc %s", epoch + 1, epochs,
                 history.loss[-1], history.accuracy[-1], val)
    if checkpoint_dir is not None:
      ckpt.save(checkpoint_dir, epoch + 1, model, opt, history)
    if on_epoch_end is not None:
      on_epoch_end(epoch + 1, history)
  return history
