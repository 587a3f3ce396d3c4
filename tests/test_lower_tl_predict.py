"""Kernel-flavor predict graphs in the real TFLM interpreter: float matches
Keras, int8 matches the TF reference's integer arithmetic bit for bit."""
import dataclasses

import numpy as np
import pytest

import tflite_tl as tl
from tflite_tl._compat import keras
from tflite_tl.flatbuffer import reader
from tflite_tl.lower.tl import graphs
from tflite_tl.lower.tl import quantization as quant
from tflite_tl.lower.tl.reference import QuantizedTrainStep
from tflite_tl.lower.tl.rule_base import Policy
from tflite_tl.tflm import run_model


def _images(n, resolution, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.integers(0, 256, (n, resolution, resolution, 1))
          / 255.0).astype(np.float32)


def _run(tflite, images):
  outs = run_model(tflite, [[images[i:i + 1]] for i in range(len(images))])
  return np.concatenate([step[0] for step in outs.outputs])


@pytest.fixture(scope="module")
def tiny_b():
  return tl.apply_method(tl.load_pretrained("tiny"), "tinytl_b",
                         num_classes=10)


def test_float_predict_matches_keras(tiny_b):
  x = _images(4, 32)
  g = graphs.predict_graph(tiny_b, policy=Policy(params_as_variables=False))
  np.testing.assert_allclose(_run(g.tflite, x), tiny_b(x).numpy(), atol=2e-5)


def _int8_policy(model, x):
  return Policy(precision="int8", params_as_variables=False,
                quantization=quant.ranges_to_quantization(
                    quant.calibrate(model, x)))


def test_int8_predict_is_bit_exact_with_reference(tiny_b):
  x = _images(8, 32)
  policy = _int8_policy(tiny_b, x)
  g = graphs.predict_graph(tiny_b, policy=policy)
  got = _run(g.tflite, quant.quantize_image(x))
  ref = QuantizedTrainStep(tiny_b, batch_size=1, policy=policy)
  want = np.concatenate([ref.predict(x[i:i + 1]).numpy() for i in range(8)])
  np.testing.assert_array_equal(got, want)
  # ... and stays close to the float model.
  assert np.abs(got - tiny_b(x).numpy()).max() < 0.2


def test_int8_predict_of_a_softmax_head_outputs_probabilities():
  # A Dense(activation="softmax") output: the graph ends in SOFTMAX, and
  # the reference's predict must too (keras.applications heads are so).
  inputs = keras.Input((16, 16, 1))
  y = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
  y = keras.layers.GlobalAveragePooling2D()(y)
  model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(y))
  x = _images(6, 16)
  policy = _int8_policy(model, x)
  got = _run(graphs.predict_graph(model, policy=policy).tflite,
             quant.quantize_image(x))
  ref = QuantizedTrainStep(model, batch_size=1, policy=policy)
  want = np.concatenate([ref.predict(x[i:i + 1]).numpy() for i in range(6)])
  np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
  np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.slow
def test_int8_mobilenet_backbone_bit_exact():
  model = tl.apply_method(tl.load_pretrained("mobilenet_v2"), "tinytl_b",
                          num_classes=10)
  gap = [l for l in model.layers
         if isinstance(l, keras.layers.GlobalAveragePooling2D)][0]
  backbone = keras.Model(model.inputs, gap.output)
  x = _images(8, 32)
  policy = _int8_policy(backbone, x)
  g = graphs.predict_graph(backbone, policy=policy)
  got = _run(g.tflite, quant.quantize_image(x[:4]))
  ref = QuantizedTrainStep(backbone, batch_size=1, policy=policy)
  want = np.concatenate([ref.predict(x[i:i + 1]).numpy() for i in range(4)])
  np.testing.assert_array_equal(got, want)


def _variable_and_fc_inputs(tflite):
  sg = reader.root(tflite).Subgraphs(0)
  variables = {i for i in range(sg.TensorsLength())
               if sg.Tensors(i).IsVariable()}
  fc_inputs = {i for op in reader.op_inputs(tflite, "FULLY_CONNECTED")
               for i in op}
  return variables, fc_inputs


@pytest.mark.parametrize("precision", ["float", "int8"])
def test_predict_graph_keeps_trained_parameters_as_constants(tiny_b,
                                                             precision):
  """The predict graph never updates its parameters, so they are constants
  (no arena); only what an int8 FULLY_CONNECTED reads stays a variable, as
  CMSIS-NN's kernel precomputes from constant inputs. The firmware points
  them at the train graph's variables either way."""
  x = _images(8, 32)
  policy = (_int8_policy(tiny_b, x) if precision == "int8" else Policy())
  policy = dataclasses.replace(policy, params_as_variables=True)
  g = graphs.predict_graph(tiny_b, policy=policy)
  train = graphs.train_graph(tiny_b, batch_size=1, policy=policy)
  trained = {v.name for v in train.variables}
  assert trained and {v.name for v in g.variables} <= trained
  variables, fc_inputs = _variable_and_fc_inputs(g.tflite)
  assert variables <= fc_inputs
  assert len(variables) < len(g.variables)
  if precision == "float":
    assert not variables
