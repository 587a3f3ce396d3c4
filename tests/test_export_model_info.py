import pytest

from tflite_tl._compat import tf
from tflite_tl.export import model_info


@pytest.fixture(scope="module")
def two_variable_tflite():
  class Step(tf.Module):

    def __init__(self):
      super().__init__()
      self.w = tf.Variable(tf.ones([3, 2]), name="w")
      self.b = tf.Variable(tf.zeros([2]), name="b")

    @tf.function(input_signature=[tf.TensorSpec([4, 3], tf.float32),
                                  tf.TensorSpec([4], tf.int32)])
    def step(self, x, labels):
      logits = tf.matmul(x, self.w) + self.b
      loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels, logits))
      self.b.assign_sub(0.1 * tf.reduce_mean(logits, axis=0))
      self.w.assign_sub(0.1 * tf.ones([3, 2]) * loss)
      return loss

  m = Step()
  conv = tf.lite.TFLiteConverter.from_concrete_functions(
      [m.step.get_concrete_function()], m)
  conv.experimental_enable_resource_variables = True
  return conv.convert()


def test_inputs_outputs_and_variables(two_variable_tflite):
  info = model_info.model_info(two_variable_tflite)
  shapes = sorted(t.shape for t in info.inputs)
  assert shapes == [(4,), (4, 3)]
  assert [t.dtype for t in info.outputs] == ["FLOAT32"]
  by_shape = {v.shape: v for v in info.variables}
  assert set(by_shape) == {(3, 2), (2,)}
  assert info.variable_bytes == (6 + 2) * 4
  assert info.size_bytes == len(two_variable_tflite)
  assert all(v.shared_name for v in info.variables)
  # The initial value is the init subgraph's constant, not the update.
  assert all(v.initial_buffer > 0 for v in info.variables)


def test_rejects_non_flatbuffer():
  with pytest.raises(ValueError, match="TFL3"):
    model_info.model_info(b"not a model")
