"""Reading and editing .tflite flatbuffers; used by every stage.

``reader``: ops, subgraph-0 inputs/outputs, resource variables and their
initial values. ``edit``: copies with extra outputs or new initial values.
Neither imports TensorFlow.
"""
from tflite_tl.flatbuffer.edit import with_extra_outputs
from tflite_tl.flatbuffer.edit import with_initial_values
from tflite_tl.flatbuffer.reader import ModelInfo
from tflite_tl.flatbuffer.reader import TensorInfo
from tflite_tl.flatbuffer.reader import VariableInfo
from tflite_tl.flatbuffer.reader import initial_values
from tflite_tl.flatbuffer.reader import inputs
from tflite_tl.flatbuffer.reader import model_info
from tflite_tl.flatbuffer.reader import op_counts
from tflite_tl.flatbuffer.reader import outputs
