"""The one .tflite reader and editor: ops, I/O, variables, initial values."""
import os
import subprocess
import sys

import numpy as np
import pytest

from tflite_tl._compat import tf
from tflite_tl.flatbuffer import edit
from tflite_tl.flatbuffer import reader

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def two_variable_tflite():
  class Step(tf.Module):

    def __init__(self):
      super().__init__()
      self.w = tf.Variable(tf.ones([3, 2]), name="w")
      # Two zero-initialised variables: the converter shares one constant.
      self.b = tf.Variable(tf.zeros([2]), name="b")
      self.c = tf.Variable(tf.zeros([2]), name="c")

    @tf.function(input_signature=[tf.TensorSpec([4, 3], tf.float32),
                                  tf.TensorSpec([4], tf.int32)])
    def step(self, x, labels):
      logits = tf.matmul(x, self.w) + self.b + self.c
      loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels, logits))
      self.b.assign_sub(0.1 * tf.reduce_mean(logits, axis=0))
      self.c.assign_add(0.1 * tf.reduce_mean(logits, axis=0))
      self.w.assign_sub(0.1 * tf.ones([3, 2]) * loss)
      return loss

  m = Step()
  conv = tf.lite.TFLiteConverter.from_concrete_functions(
      [m.step.get_concrete_function()], m)
  conv.experimental_enable_resource_variables = True
  return conv.convert()


def test_inputs_outputs_and_variables(two_variable_tflite):
  info = reader.model_info(two_variable_tflite)
  shapes = sorted(t.shape for t in info.inputs)
  assert shapes == [(4,), (4, 3)]
  assert [t.dtype for t in info.outputs] == ["FLOAT32"]
  assert all(t.index >= 0 for t in info.inputs + info.outputs)
  assert sorted(v.shape for v in info.variables) == [(2,), (2,), (3, 2)]
  assert info.variable_bytes == (6 + 2 + 2) * 4
  assert info.size_bytes == len(two_variable_tflite)
  assert all(v.shared_name for v in info.variables)
  # The initial value is the init subgraph's constant, not the update.
  assert all(v.initial_buffer > 0 for v in info.variables)


def test_op_counts_cover_every_subgraph(two_variable_tflite):
  everywhere = reader.op_counts(two_variable_tflite)
  step_only = reader.op_counts(two_variable_tflite, subgraph=0)
  assert everywhere["VAR_HANDLE"] > step_only["VAR_HANDLE"]
  assert "CALL_ONCE" in step_only and list(everywhere) == sorted(everywhere)


def test_initial_values_and_readouts(two_variable_tflite):
  values = reader.initial_values(two_variable_tflite)
  assert len(values) == 3
  by_shape = {v.shape: v for v in values.values()}
  np.testing.assert_array_equal(by_shape[(3, 2)], np.ones([3, 2]))
  readouts = reader.variable_readouts(two_variable_tflite)
  assert sorted(readouts) == sorted(values)


def test_new_initial_values_round_trip(two_variable_tflite):
  values = reader.initial_values(two_variable_tflite)
  rs = np.random.RandomState(0)
  new = {n: rs.randn(*v.shape).astype(np.float32) for n, v in values.items()}
  got = reader.initial_values(edit.with_initial_values(two_variable_tflite,
                                                       new))
  for name in new:  # the shared zero constant was split per variable
    np.testing.assert_array_equal(got[name], new[name])
  one = sorted(n for n in values if values[n].shape == (2,))[0]
  partial = reader.initial_values(edit.with_initial_values(
      two_variable_tflite, {one: np.full(2, 3.0, np.float32)}))
  assert partial[one].tolist() == [3.0, 3.0]
  assert all(not partial[n].any() for n in values
             if n != one and values[n].shape == (2,))
  with pytest.raises(KeyError, match="nope"):
    edit.with_initial_values(two_variable_tflite, {"nope": np.zeros(2)})
  with pytest.raises(ValueError, match="shape"):
    edit.with_initial_values(two_variable_tflite, {one: np.zeros(3)})


def test_extra_outputs_are_appended(two_variable_tflite):
  readouts = reader.variable_readouts(two_variable_tflite)
  more = edit.with_extra_outputs(two_variable_tflite, readouts.values())
  outs = reader.outputs(more)
  assert len(outs) == 1 + len(readouts)
  assert [t.index for t in outs[1:]] == list(readouts.values())
  assert reader.outputs(two_variable_tflite) == outs[:1]


def test_rejects_non_flatbuffer():
  for fn in (reader.model_info, reader.op_counts, reader.initial_values):
    with pytest.raises(ValueError, match="TFL3"):
      fn(b"not a model")


def test_reader_does_not_import_tensorflow():
  code = ("import sys\nfrom tflite_tl.flatbuffer import reader, edit\n"
          "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n")
  env = dict(os.environ, PYTHONPATH=_ROOT)
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, env=env, check=False)
  assert proc.returncode == 0, proc.stderr
