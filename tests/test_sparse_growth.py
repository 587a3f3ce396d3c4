"""The channel steps both allocations share."""
from tflite_tl.sparse import growth


def test_admission_is_the_fraction_rounded_up_and_at_least_one():
  assert growth.admission_size(48, 0.125) == 6
  assert growth.admission_size(10, 0.125) == 2
  assert growth.admission_size(3, 0.125) == 1


def test_growth_is_an_eighth_then_one_channel():
  assert growth.growth_step(96, fine=False) == 12
  assert growth.growth_step(5, fine=False) == 1
  assert growth.growth_step(96, fine=True) == 1
