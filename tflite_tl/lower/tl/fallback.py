"""Layers without a native kernel-flavor rule, lowered through the converter.

Any layer that the builtin flavor lowers (:mod:`tflite_tl.lower.layers`: a
forward pass plus a custom gradient out of TFLM builtins) can join a
kernel-flavor graph: its forward function and its vector-Jacobian product
are each converted to builtin ops by the TF converter and spliced into the
graph being written, the forward where the layer runs, the VJP where its
gradient arrives (it recomputes the layer's forward from the kept inputs,
which costs compute, not stored activations). Trained parameters are
variable tensors in the Keras layout, updated in place by TL_SGD_UPDATE.
"""
from typing import Dict, List, Sequence

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from tflite_tl._compat import tf
from tflite_tl.lower.layers import LayerSite
from tflite_tl.lower.layers import UnsupportedLayerError
from tflite_tl.lower.layers import rule_for
from tflite_tl.lower.tl import options as opt
from tflite_tl.lower.tl.emitter import Grad
from tflite_tl.lower.tl.flatbuffer_writer import NUMPY_TYPES
from tflite_tl.lower.tl.flatbuffer_writer import Quantization
from tflite_tl.lower.tl.flatbuffer_writer import Tensor
from tflite_tl.lower.tl.rule_base import Call
from tflite_tl.lower.tl.rule_base import Emitted


def fallback_rule(call: Call) -> Emitted:
  node = call.node
  em = call.em
  try:
    rule_for(node.layer)
  except UnsupportedLayerError as e:
    raise UnsupportedLayerError(
        f"{e} (no kernel-flavor rule either)") from None
  trained = sorted(node.trained) if call.policy.params_as_variables else []
  # The converter chooses these ops, so no rule vouches for how their
  # kernels treat constant inputs: the parameters stay variables.
  params = {w: em.parameter(call.param_name(w), call.weight(w),
                            cached_by_kernels=True)
            for w in trained}
  xs = [em.as_float(x) for x in call.inputs]
  training = call.policy.training
  need = [call.need_input_grad(i) for i in range(len(xs))]
  grads_wanted = training and (any(need) or (trained and call.backward_reaches))

  # The builtin rule is built once, eagerly (some rules precompute NumPy
  # constants); the converted functions feed it the trained parameters
  # through ``current``.
  values = {w: call.weight(w) for w in node.weights}
  current: Dict[str, tf.Tensor] = {}

  def weight(name):
    if name in current:
      return current[name]
    return tf.constant(values[name])

  site = LayerSite(
      layer=node.layer, in_shapes=[list(s) for s in node.in_shapes],
      out_shapes=[list(node.out_shape)],
      need_input_grads=need if training else [False] * len(xs),
      weight=weight, trained=lambda name: name in trained,
      has_weight=lambda name: name in node.weights,
      is_model_output=node.is_model_output)
  fn = rule_for(node.layer)(site)

  x_specs = [tf.TensorSpec(list(s), tf.float32, f"x{i}")
             for i, s in enumerate(node.in_shapes)]
  p_specs = [tf.TensorSpec(list(params[w].shape), tf.float32, f"p{k}")
             for k, w in enumerate(trained)]

  def layer_fn(xs_, ps_):
    current.clear()
    current.update(zip(trained, ps_))
    return fn(list(xs_))

  @tf.function(input_signature=x_specs + p_specs)
  def forward(*args):
    return {"y": layer_fn(args[:len(xs)], args[len(xs):])}

  y = em.writer.activation(call.name, node.out_shape)
  _splice(em, forward, list(xs) + [params[w] for w in trained], {"y": y},
          call.name)
  if not grads_wanted:
    return Emitted(y)

  dy_spec = tf.TensorSpec(list(node.out_shape), tf.float32, "dy")

  @tf.function(input_signature=x_specs + p_specs + [dy_spec])
  def vjp(*args):
    x_args, p_args = list(args[:len(xs)]), list(args[len(xs):-1])
    dy = args[-1]
    with tf.GradientTape() as tape:
      for t in x_args + p_args:
        tape.watch(t)
      out = layer_fn(x_args, p_args)
    targets = ([x for x, n in zip(x_args, need) if n] + p_args)
    grads = tape.gradient(out, targets, output_gradients=dy)
    result = {}
    k = 0
    for i, n in enumerate(need):
      if n:
        result[f"dx{i}"] = grads[k]
        k += 1
    for j in range(len(p_args)):
      result[f"dp{j}"] = grads[k + j]
    return result

  def backward(g: Grad):
    dy = em.materialize(g)
    outs = {f"dx{i}": em.writer.activation(f"{call.name}/grad_input{i}",
                                           node.in_shapes[i])
            for i, n in enumerate(need) if n}
    outs.update({f"dp{j}": em.writer.activation(
        f"{call.name}/grad_{w}", params[w].shape)
                 for j, w in enumerate(trained)})
    _splice(em, vjp, list(xs) + [params[w] for w in trained] + [dy], outs,
            f"{call.name}/vjp")
    for j, w in enumerate(trained):
      em.tl("TL_SGD_UPDATE", [params[w], outs[f"dp{j}"]], [],
            learning_rate=call.policy.learning_rate, momentum=0.0)
    return [Grad(outs[f"dx{i}"]) if n else None for i, n in enumerate(need)]

  return Emitted(y, backward)


def _splice(em, function, inputs: Sequence[Tensor], outputs: Dict[str, Tensor],
            prefix: str) -> None:
  """Converts ``function`` and copies its ops into ``em``'s graph, binding
  its inputs (in signature order) to ``inputs`` and its named outputs to
  ``outputs``."""
  concrete = function.get_concrete_function()
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [concrete], tf.Module())
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  model = flatbuffer_utils.convert_bytearray_to_object(
      bytearray(converter.convert()))
  if len(model.subgraphs) != 1:
    raise UnsupportedLayerError(
        f"{prefix}: the converted layer has {len(model.subgraphs)} subgraphs; "
        "the kernel flavor can splice only single-subgraph layers.")
  sg = model.subgraphs[0]
  names = [_name(sg.tensors[i].name) for i in sg.inputs]
  mapping: Dict[int, Tensor] = {}
  for k, t in enumerate(inputs):
    key = function.input_signature[k].name
    matches = [i for i, n in zip(sg.inputs, names)
               if n == key or n.split("_")[-1].split(":")[0] == key]
    if len(matches) != 1:
      raise UnsupportedLayerError(
          f"{prefix}: cannot find input {key!r} among the converted layer's "
          f"inputs {names}.")
    mapping[matches[0]] = t
  # A dict of outputs converts in sorted key order.
  keys = sorted(outputs)
  if len(keys) != len(sg.outputs):
    raise UnsupportedLayerError(
        f"{prefix}: the converted layer has {len(sg.outputs)} outputs, "
        f"expected {len(keys)}.")
  out_by_name = dict(zip(keys, sg.outputs))
  produced = {i for op in sg.operators for i in op.outputs}
  bound_outputs = {out_by_name[k]: v for k, v in outputs.items()}
  for index, target in bound_outputs.items():
    if index in produced and index not in mapping:
      mapping[index] = target

  def tensor_for(index: int) -> Tensor:
    if index in mapping:
      return mapping[index]
    st = sg.tensors[index]
    name = _name(st.name)
    dtype = NUMPY_TYPES[st.type]
    shape = [] if st.shape is None else [int(d) for d in st.shape]
    q = None
    if st.quantization is not None and st.quantization.scale is not None:
      q = Quantization(tuple(float(s) for s in st.quantization.scale),
                       tuple(int(z) for z in st.quantization.zeroPoint),
                       int(st.quantization.quantizedDimension))
    data = model.buffers[st.buffer].data
    if data is not None and len(data):
      value = np.frombuffer(np.asarray(data, np.uint8).tobytes(),
                            dtype).reshape(shape)
      mapping[index] = em.writer.constant(f"{prefix}/{name}", value,
                                          quantization=q)
    else:
      mapping[index] = em.writer.activation(f"{prefix}/{name}", shape, dtype, q)
    return mapping[index]

  for op in sg.operators:
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    ins = [None if i < 0 else tensor_for(i) for i in op.inputs]
    outs = [tensor_for(i) for i in op.outputs]
    em.writer.builtin(builtin, ins, outs, op.builtinOptions,
                      op.builtinOptionsType)
  # An output the converter left as a pass-through of an input or as a
  # constant has no producing op: copy it into its tensor.
  for index, target in bound_outputs.items():
    if mapping.get(index) is not target:
      source = tensor_for(index)
      shape = em.int32_constant(f"{target.name}/shape", list(target.shape))
      em.writer.builtin(schema.BuiltinOperator.RESHAPE, [source, shape],
                        [target], *opt.reshape(list(target.shape)))


def _name(raw) -> str:
  return raw.decode() if isinstance(raw, bytes) else raw
