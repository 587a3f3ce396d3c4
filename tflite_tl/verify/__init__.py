"""Verification: the lowered models against TensorFlow, in the real TFLM
interpreter (a subprocess), with one error measure.

``errors`` (the error measure), ``train_step`` (N train steps in TF and TFLM,
with rounding-tie analysis and the verdict ``exact`` / ``within_rounding`` /
``failed``), ``inference`` (predict and int8 models against Keras) and
``check`` (``python -m export.verify``: a zoo model end to end).
"""
from tflite_tl.verify.check import VerifyConfig
from tflite_tl.verify.check import format_text
from tflite_tl.verify.check import verify
from tflite_tl.verify.errors import rel_err
from tflite_tl.verify.inference import InferenceParity
from tflite_tl.verify.inference import inference_parity
from tflite_tl.verify.train_step import TrainParity
from tflite_tl.verify.train_step import compare
from tflite_tl.verify.train_step import train_parity
