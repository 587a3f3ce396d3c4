import json

import pytest

from tflite_tl._compat import keras
from tflite_tl import models
from tflite_tl.memory import table


def _small_model():
  inp = keras.Input((8, 8, 3))
  x = keras.layers.Conv2D(8, 3, use_bias=False)(inp)
  x = keras.layers.BatchNormalization()(x)
  x = keras.layers.ReLU()(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inp, keras.layers.Dense(3)(x), name="small")


def test_table_shape_and_formats():
  model = _small_model()
  result = table.method_memory_table(model, batch_size=8, num_classes=5,
                                     methods=["ft_last", "tinytl_b"])
  assert result["figures"] == "modelled (analytic)"
  assert set(result["methods"]) == {"ft_last", "tinytl_b"}
  row = result["methods"]["ft_last"]
  assert row["paper_mb"] == 31.0
  assert row["relative_error"] == pytest.approx(row["total_mb"] / 31 - 1,
                                                abs=1e-4)
  assert json.loads(table.to_json(result)) == result
  markdown = table.to_markdown(result)
  assert "| FT-Last (`ft_last`) |" in markdown and "| 31 |" in markdown
  again = table.method_memory_table(model, batch_size=8, num_classes=5,
                                    methods=["ft_last", "tinytl_b"])
  assert table.to_json(again) == table.to_json(result)


@pytest.mark.slow
def test_reproduces_tinytl_table2_within_ten_percent():
  model = models.get_model("proxyless_mobile", resolution=224)
  result = table.method_memory_table(model, batch_size=8,
                                     num_classes=table.TINYTL_NUM_CLASSES)
  assert set(result["methods"]) == set(table.TINYTL_TABLE2_MB)
  for name, row in result["methods"].items():
    assert abs(row["relative_error"]) < 0.10, (name, row)


def test_method_report_passes_lite_options():
  inp = keras.Input((8, 8, 8))
  x = keras.layers.Conv2D(16, 1, use_bias=False)(inp)
  x = keras.layers.BatchNormalization()(x)
  x = keras.layers.ReLU(6.0)(x)
  x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
  x = keras.layers.ReLU(6.0)(x)
  x = keras.layers.Conv2D(8, 1)(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  model = keras.Model(inp, keras.layers.Dense(3)(x))
  options = table.lite_norm_options("batch")
  rewritten, report = table.method_report(model, "tinytl_l", 2, None,
                                          **options["tinytl_l"])
  assert report.layer("dw_lite_norm1").kind == "norm"
  assert report.layer("dw_lite_conv1").saved_bytes == 4 * 4 * 8 * 4
  assert report.batch_size == 2 and rewritten.get_layer("dw_lite_add")
