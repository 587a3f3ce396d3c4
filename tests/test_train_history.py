import json

from tflite_tl.train import History


def test_json_round_trip():
  h = History()
  h.append(2.0, 0.25, None)
  h.append(1.0, 0.5, 0.4)
  assert h.epochs == 2
  assert History.from_dict(json.loads(h.to_json())) == h
