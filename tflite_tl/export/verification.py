"""Parity of the exported models in the real TFLM interpreter (subprocess).

- train step: N steps in TF (the lowering's reference ``module.train_step``)
  and in TFLM on the same batches; relative errors of the losses and of the
  parameters after the last step.
- predict model (float forward sharing the variables): logits against Keras.
- int8 inference model: accuracy and arg-max agreement with the float model.

Relative error of a tensor = max |tflm - tf| / max |tf| (0 when both are 0),
so a value near zero does not inflate it.
"""
import dataclasses
from typing import Dict, List, Sequence, Tuple

import numpy as np

from tflite_tl.lower import quantize
from tflite_tl.flatbuffer.reader import ModelInfo


def rel_err(actual: np.ndarray, expected: np.ndarray) -> float:
  actual = np.asarray(actual, np.float64)
  expected = np.asarray(expected, np.float64)
  scale = float(np.max(np.abs(expected))) if expected.size else 0.0
  diff = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
  if scale == 0.0:
    return diff
  return diff / scale


def _round(x: float, digits: int = 6) -> float:
  return float(f"{x:.{digits}g}")


@dataclasses.dataclass(frozen=True)
class TrainParity:
  steps: int
  losses_tf: Tuple[float, ...]
  losses_tflm: Tuple[float, ...]
  max_rel_err_loss: float
  max_rel_err_params: float

  def to_dict(self) -> dict:
    return {"steps": self.steps,
            "losses_tf": [_round(v) for v in self.losses_tf],
            "losses_tflm": [_round(v) for v in self.losses_tflm],
            "max_rel_err_loss": _round(self.max_rel_err_loss, 3),
            "max_rel_err_params": _round(self.max_rel_err_params, 3)}


def train_parity(module, train_tflite: bytes,
                 batches: Sequence[Tuple[np.ndarray, np.ndarray]]
                 ) -> TrainParity:
  """Runs the batches through TFLM and through ``module.train_step``.

  ``module`` is changed (its variables take the steps); call this last.
  """
  from tflite_tl import tflm  # pylint: disable=import-outside-toplevel
  batches = [(np.asarray(x, np.float32), np.asarray(y, np.int32))
             for x, y in batches]
  run = tflm.run_train_steps(train_tflite, batches, read_params=True)
  losses_tf = []
  for x, y in batches:
    out = module.train_step(x, y)
    losses_tf.append(float(np.asarray(out["loss"]).reshape(-1)[0]))
  tf_params = module.param_values()
  errs = [rel_err(run.params[n], tf_params[n]) for n in tf_params
          if n in run.params]
  if len(errs) != len(tf_params):
    missing = sorted(set(tf_params) - set(run.params))
    raise RuntimeError(f"TFLM run did not return parameters {missing}.")
  loss_err = max(abs(a - b) / max(abs(b), 1e-12)
                 for a, b in zip(run.losses, losses_tf))
  return TrainParity(len(batches), tuple(losses_tf),
                     tuple(float(v) for v in run.losses), float(loss_err),
                     float(max(errs)))


def _run_batch1(tflite_bytes: bytes, images: np.ndarray) -> np.ndarray:
  from tflite_tl import tflm  # pylint: disable=import-outside-toplevel
  result = tflm.run_model(tflite_bytes, [[images[i:i + 1]]
                                         for i in range(len(images))])
  return np.concatenate([np.asarray(o[0]).reshape(1, -1)
                         for o in result.outputs])


@dataclasses.dataclass(frozen=True)
class InferenceParity:
  images: int
  max_rel_err_logits: float
  float_accuracy: float
  predict_accuracy: float
  int8_accuracy: float
  int8_agreement: float

  def to_dict(self) -> dict:
    return {k: (_round(v, 4) if isinstance(v, float) else v)
            for k, v in dataclasses.asdict(self).items()}


def inference_parity(keras_logits: np.ndarray, predict_tflite: bytes,
                     int8_tflite: bytes, int8_info: ModelInfo,
                     images: np.ndarray, labels: np.ndarray
                     ) -> InferenceParity:
  """Predict model vs Keras logits, int8 model accuracy, both run in TFLM."""
  images = np.asarray(images, np.float32)
  labels = np.asarray(labels).reshape(-1)
  predict = _run_batch1(predict_tflite, images)
  iq, oq = int8_info.inputs[0], int8_info.outputs[0]
  q_images = quantize.quantize_input(images, iq.scale, iq.zero_point)
  int8_out = quantize.dequantize(_run_batch1(int8_tflite, q_images), oq.scale,
                                 oq.zero_point)
  ref = np.asarray(keras_logits, np.float32)
  return InferenceParity(
      images=int(len(images)),
      max_rel_err_logits=rel_err(predict, ref),
      float_accuracy=float(np.mean(ref.argmax(1) == labels)),
      predict_accuracy=float(np.mean(predict.argmax(1) == labels)),
      int8_accuracy=float(np.mean(int8_out.argmax(1) == labels)),
      int8_agreement=float(np.mean(int8_out.argmax(1) == ref.argmax(1))))
