import pytest

from tflite_tl._compat import tf
from tflite_tl.firmware import op_resolver


@pytest.fixture(scope="module")
def stateful_tflite():
  class Step(tf.Module):

    def __init__(self):
      super().__init__()
      self.bias = tf.Variable(tf.zeros([4]), name="bias")

    @tf.function(input_signature=[tf.TensorSpec([2, 4], tf.float32)])
    def step(self, x):
      y = tf.math.tanh(x + self.bias)
      self.bias.assign_sub(0.1 * tf.reduce_mean(y, axis=0))
      return tf.reduce_sum(y)

  m = Step()
  conv = tf.lite.TFLiteConverter.from_concrete_functions(
      [m.step.get_concrete_function()], m)
  conv.experimental_enable_resource_variables = True
  return conv.convert()


def test_op_counts_cover_all_subgraphs(stateful_tflite):
  counts = op_resolver.op_counts(stateful_tflite)
  # VAR_HANDLE appears in the CALL_ONCE init subgraph as well as the step.
  for op in ("VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE",
             "TANH", "SUM"):
    assert op in counts
  assert list(counts) == sorted(counts)


def test_header_registers_exactly_the_used_ops(stateful_tflite):
  header = op_resolver.resolver_header({"train.tflite": stateful_tflite})
  ops = op_resolver.op_counts(stateful_tflite)
  assert f"kOpCount = {len(ops)};" in header
  for op in ops:
    assert f"resolver.{op_resolver.RESOLVER_METHODS[op]}()" in header
  assert header.count("resolver.Add") == len(ops)


def test_two_models_share_registrations(stateful_tflite):
  calls = op_resolver.resolver_calls({"train.tflite": stateful_tflite,
                                      "infer.tflite": stateful_tflite})
  assert all(users == ("infer.tflite", "train.tflite")
             for _, _, users in calls)


def test_unsupported_op_names_op_and_model(stateful_tflite, monkeypatch):
  monkeypatch.delitem(op_resolver.RESOLVER_METHODS, "TANH")
  with pytest.raises(op_resolver.UnsupportedOpError,
                     match="TANH in train.tflite"):
    op_resolver.resolver_header({"train.tflite": stateful_tflite})


def test_not_a_flatbuffer():
  with pytest.raises(ValueError, match="TFL3"):
    op_resolver.op_counts(b"\x00" * 64)


def test_method_names_follow_tflm_spelling():
  # Spot checks of the irregular names in micro_mutable_op_resolver.h.
  assert op_resolver.RESOLVER_METHODS["ADD_N"] == "AddAddN"
  assert op_resolver.RESOLVER_METHODS["CUMSUM"] == "AddCumSum"
  assert op_resolver.RESOLVER_METHODS["SPACE_TO_BATCH_ND"] == "AddSpaceToBatchNd"
  assert op_resolver.RESOLVER_METHODS["UNIDIRECTIONAL_SEQUENCE_LSTM"] == (
      "AddUnidirectionalSequenceLSTM")
