import pytest

from tflite_tl._compat import keras
from tflite_tl.train import make_optimizer


def test_names():
  sgd = make_optimizer("sgd", 0.1, momentum=0.0)
  assert isinstance(sgd, keras.optimizers.SGD) and float(sgd.momentum) == 0.0
  assert isinstance(make_optimizer("Adam", 1e-3), keras.optimizers.Adam)


def test_instance_and_schedule_pass_through():
  opt = keras.optimizers.Adam(1e-3)
  assert make_optimizer(opt, None) is opt
  schedule = keras.optimizers.schedules.CosineDecay(0.1, 100)
  assert make_optimizer("sgd", schedule).learning_rate is not None


@pytest.mark.parametrize("name,lr,match", [("rmsprop", 0.1, "Supported"),
                                           ("sgd", 0.0, "positive")])
def test_errors(name, lr, match):
  with pytest.raises(ValueError, match=match):
    make_optimizer(name, lr)
