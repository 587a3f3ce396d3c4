import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl import memory
from tflite_tl import rewrite
from tflite_tl.memory import report


def _model(trainable):
  """Input 4x4x2 -> 1x1 conv (3) -> ReLU -> global pool -> dense (2)."""
  inp = keras.Input((4, 4, 2))
  x = keras.layers.Conv2D(3, 1, name="c")(inp)
  x = keras.layers.ReLU(name="r")(x)
  x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
  model = keras.Model(inp, keras.layers.Dense(2, name="fc")(x))
  return rewrite.set_trainable(
      model, lambda layer, current: trainable.get(layer.name, set()))


def test_head_only_needs_no_masks_and_peaks_at_the_conv():
  r = memory.training_memory(_model({"fc": {"kernel", "bias"}}), batch_size=2)
  # Conv working set: input 32 + output 48 floats.
  assert r.peak_activation_bytes_per_sample == 320 and r.peak_layer == "c"
  assert r.layer("r").saved_bytes == 0
  assert r.layer("fc").saved_bytes == 3 * 4
  # Frozen conv (6 + 3 weights) at 8 bits, dense (6 + 2) at 32 bits.
  assert r.frozen_param_bytes == 9 and r.trainable_param_bytes == 32
  assert r.total_bytes == 320 * 2 + 41


def test_bias_training_stores_only_a_one_bit_relu_mask():
  r = memory.training_memory(
      _model({"c": {"bias"}, "fc": {"kernel", "bias"}}), batch_size=1)
  assert r.layer("c").saved_bytes == 0
  mask = [x for x in r.layer("r").records if x.role == report.SAVED]
  assert len(mask) == 1 and mask[0].bits == 1 and mask[0].bytes == 48 / 8
  assert mask[0].shape == (4, 4, 3)
  assert r.trainable_param_bytes == 3 * 4 + 32 and r.frozen_param_bytes == 6


def test_kernel_training_stores_the_conv_input_until_the_backward():
  r = memory.training_memory(_model({"c": {"kernel"}, "fc": {"kernel"}}))
  assert r.layer("c").saved_bytes == 32 * 4
  # Global pool: input 48 + output 3 floats, plus input (128) and mask (6).
  assert r.layer("gap").held_bytes == (48 + 3) * 4 + 128 + 6
  assert r.peak_layer == "gap"
  assert r.saved_activation_bytes_per_sample == 128 + 6 + 12


def test_tensors_read_later_stay_live():
  inp = keras.Input((4, 4, 2))
  a = keras.layers.Conv2D(2, 1, name="a")(inp)
  b = keras.layers.Conv2D(2, 1, name="b")(a)
  c = keras.layers.Conv2D(2, 1, name="c")(b)
  model = keras.Model(inp, keras.layers.Add(name="add")([a, c]))
  r = memory.training_memory(model)
  assert r.layer("b").live_bytes == 0  # a's output is b's input
  assert r.layer("c").live_bytes == 32 * 4
  live = [x for x in r.layer("c").records if x.role == report.LIVE]
  assert live[0].tensor == "a:output"


def test_depthwise_working_output_is_per_channel():
  inp = keras.Input((4, 4, 8))
  model = keras.Model(inp, keras.layers.DepthwiseConv2D(3, padding="same",
                                                        name="dw")(inp))
  r = memory.training_memory(model)
  assert r.layer("dw").working_bytes == (128 + 128 / 8) * 4


def test_methods_order_like_the_paper_and_report_is_explicit():
  inp = keras.Input((16, 16, 3))
  x = keras.layers.Conv2D(8, 3, 2, padding="same", use_bias=False)(inp)
  x = keras.layers.BatchNormalization()(x)
  x = keras.layers.ReLU(6.0)(x)
  x = keras.layers.Conv2D(24, 1, use_bias=False)(x)
  x = keras.layers.BatchNormalization()(x)
  x = keras.layers.ReLU(6.0)(x)
  x = keras.layers.DepthwiseConv2D(3, 2, padding="same", use_bias=False)(x)
  x = keras.layers.BatchNormalization()(x)
  x = keras.layers.ReLU(6.0)(x)
  x = keras.layers.Conv2D(16, 1, use_bias=False)(x)
  x = keras.layers.BatchNormalization()(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  model = keras.Model(inp, keras.layers.Dense(10)(x))
  rs = np.random.RandomState(0)
  support = (rs.rand(20, 16, 16, 3).astype(np.float32), np.arange(20) % 10)
  totals = {m: memory.training_memory(rewrite.apply_method(
      model, m, **({"support": support} if rewrite.method_needs_support(m)
                   else {})), batch_size=8).total_bytes
            for m in rewrite.list_methods()}
  assert totals["ft_full"] > totals["ft_norm_last"] > totals["tinytl_lb"]
  assert totals["tinytl_lb"] >= totals["tinytl_l"] > totals["tinytl_b"]
  assert totals["tinytl_b"] > totals["ft_last"]
  r = memory.training_memory(rewrite.apply_method(model, "tinytl_lb"))
  assert r.summary()["figures"] == "modelled (analytic)"
  assert all(x.why and x.role in (report.SAVED, report.WORKING, report.LIVE)
             for x in r.records)
  assert sum(p.bytes for p in r.params) == r.param_bytes
  assert "modelled (analytic)" in r.format_table()
  assert r.to_dict()["layers"][0]["tensors"]


def test_bad_arguments_are_rejected():
  model = _model({})
  with pytest.raises(ValueError, match="batch_size must be a positive"):
    memory.training_memory(model, batch_size=0)
  with pytest.raises(ValueError, match="frozen_param_bits must be one of"):
    memory.training_memory(model, frozen_param_bits=7)
  inp = keras.Input((None, None, 3))
  dynamic = keras.Model(inp, keras.layers.Conv2D(2, 1, name="dyn")(inp))
  with pytest.raises(ValueError, match="unknown shape.*fixed input shape"):
    memory.training_memory(dynamic)
