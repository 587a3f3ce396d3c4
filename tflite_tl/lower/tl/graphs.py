"""The kernel flavor's train-step and predict graphs.

Train step (subgraph 0, one SGD step per invoke):
  inputs  images [B,H,W,C] (float32 in [0, 1], or int8 with scale 1/255 and
          zero point -128 in an int8 graph), labels int32 [B]
  output  loss float32 [1]: the batch's mean loss before the update
  forward layer by layer, TL_SOFTMAX_XENT (loss and d loss/d logits in one
  op), then each layer's backward ops in reverse order, stopping at the
  earliest trained layer. Parameters are variable tensors updated in place.
Predict (batch 1): the same forward pass; output logits, or probabilities
when the Keras model ends in a softmax. Its trained parameters are variable
tensors with the same names as the train step's (a board copies them over
after training) or constants (a standalone model).

Each graph carries a ``tflite_tl`` metadata entry (JSON): its variables with
their roles and layouts, the input encoding and the precision, so that
runtimes and the firmware export need no guessing.
"""
import dataclasses
import json
from typing import List, Optional

import numpy as np

from tflite_tl._compat import keras
from tflite_tl.lower.tl import fallback
from tflite_tl.lower.tl import inverted_residual
from tflite_tl.lower.tl import options as opt
from tflite_tl.lower.tl import quantization as quant
from tflite_tl.lower.tl import rules_conv  # noqa: F401  (registers rules)
from tflite_tl.lower.tl import rules_norm  # noqa: F401  (registers rules)
from tflite_tl.lower.tl import rules_simple  # noqa: F401  (registers rules)
from tflite_tl.lower.tl import rules_sparse  # noqa: F401  (registers rules)
from tflite_tl.lower.tl.emitter import Emitter
from tflite_tl.lower.tl.emitter import Grad
from tflite_tl.lower.tl.emitter import Op
from tflite_tl.lower.tl.emitter import VariableSpec
from tflite_tl.lower.tl.model_graph import ModelGraph
from tflite_tl.lower.tl.rule_base import Call
from tflite_tl.lower.tl.rule_base import Policy
from tflite_tl.lower.tl.rule_base import native_rule

METADATA_NAME = "tflite_tl"
FORMAT_VERSION = 1


@dataclasses.dataclass
class Graph:
  """One emitted graph and what a runtime needs to know about it."""
  tflite: bytes
  variables: List[VariableSpec]
  precision: str
  input_quantization: Optional[dict]
  output_name: str


def _forward(graph: ModelGraph, em: Emitter, policy: Policy, images):
  values = {graph.input_id: images}
  backwards = []
  blocks = inverted_residual.find_blocks(graph, policy)
  fused = set().union(*(b.members for b in blocks.values()))
  for node in graph.nodes:
    if node.index in blocks:
      # A frozen int8 block as one op (emitted where its last layer was).
      block = blocks[node.index]
      emitted = inverted_residual.emit(block, values[block.input_id], em,
                                       policy)
      values[node.output_id] = emitted.output
      if emitted.backward is not None:
        # Its gradient goes to the block's input, past the interior.
        backwards.append((dataclasses.replace(
            node, input_ids=[block.input_id]), emitted.backward))
      continue
    if node.index in fused:
      continue  # inside a fused block: no tensor, no backward
    call = Call(node, graph, [values[t] for t in node.input_ids], em, policy)
    rule = native_rule(node.layer) or fallback.fallback_rule
    emitted = rule(call)
    values[node.output_id] = emitted.output
    backwards.append((node, emitted.backward))
  return values[graph.output_id], backwards


def _images_input(em: Emitter, shape, policy: Policy):
  if policy.int8:
    return em.writer.activation("images", shape, np.int8,
                                quant.IMAGE_QUANTIZATION)
  return em.writer.activation("images", shape)


def _metadata(kind: str, em: Emitter, policy: Policy, images, extra=None):
  info = {
      "format": f"tflite-tl/{kind}", "version": FORMAT_VERSION,
      "kernels": "tl", "precision": policy.precision,
      "images": {"dtype": np.dtype(images.dtype).name,
                 "scale": (images.quantization.scale[0]
                           if images.quantization else None),
                 "zero_point": (images.quantization.zero_point[0]
                                if images.quantization else None)},
      "variables": [v.to_dict() for v in em.variables],
  }
  info.update(extra or {})
  return json.dumps(info, sort_keys=True).encode()


def _input_quantization(images) -> Optional[dict]:
  if images.quantization is None:
    return None
  return {"scale": images.quantization.scale[0],
          "zero_point": images.quantization.zero_point[0]}


def train_graph(model: keras.Model, *, batch_size: int, policy: Policy,
                label_smoothing: float = 0.0) -> Graph:
  """The train-step graph of ``model`` (its trainable weights train)."""
  graph = ModelGraph(model, batch_size)
  graph.check_trainable()
  em = Emitter("train_step", learning_rate=policy.learning_rate)
  images = _images_input(em, graph.input_shape, policy)
  labels = em.writer.activation("labels", [batch_size], np.int32)
  output, backwards = _forward(graph, em, policy, images)
  logits = em.as_float(output)
  loss = em.writer.activation("loss", [1])
  grad_logits = em.writer.activation("grad_logits", logits.shape)
  em.tl("TL_SOFTMAX_XENT", [logits, labels], [loss, grad_logits],
        label_smoothing=float(label_smoothing))
  pending = {graph.output_id: [Grad(grad_logits)]}
  em.pending_grads = pending  # see Emitter.take_pending_grad
  for node, backward in reversed(backwards):
    grads = pending.pop(node.output_id, None)
    if grads is None or backward is None:
      continue
    g = em.sum_grads(grads, f"{node.name}/grad_sum")
    for tensor_id, gi in zip(node.input_ids, backward(g)):
      if gi is not None and graph.needs_grad[tensor_id]:
        pending.setdefault(tensor_id, []).append(gi)
  em.writer.add_metadata(METADATA_NAME, _metadata(
      "train-step", em, policy, images,
      {"batch_size": batch_size, "learning_rate": policy.learning_rate,
       "label_smoothing": float(label_smoothing), "qas": policy.qas}))
  tflite = em.writer.finish([images, labels], [loss])
  return Graph(tflite, list(em.variables), policy.precision,
               _input_quantization(images), "loss")


def predict_graph(model: keras.Model, *, policy: Policy) -> Graph:
  """The batch-1 forward pass of ``model`` (logits or probabilities)."""
  policy = dataclasses.replace(policy, training=False)
  graph = ModelGraph(model, 1)
  em = Emitter("predict", read_only_parameters=True)
  images = _images_input(em, graph.input_shape, policy)
  output, _ = _forward(graph, em, policy, images)
  logits = em.as_float(output)
  result, name = logits, "logits"
  if em.softmax_output:
    result = em.writer.activation("probabilities", logits.shape)
    em.writer.builtin(Op.SOFTMAX, [logits], [result], *opt.softmax())
    name = "probabilities"
  em.writer.add_metadata(METADATA_NAME,
                         _metadata("predict", em, policy, images))
  tflite = em.writer.finish([images], [result])
  return Graph(tflite, list(em.variables), policy.precision,
               _input_quantization(images), name)

