"""Analytic (modelled) training-memory accounting, TinyTL-style."""
from tflite_tl.memory.report import MB
from tflite_tl.memory.report import LayerMemory
from tflite_tl.memory.report import MemoryReport
from tflite_tl.memory.report import ParamRecord
from tflite_tl.memory.report import TensorRecord
from tflite_tl.memory.training_memory import training_memory
from tflite_tl.memory.table import TINYTL_TABLE2_MB
from tflite_tl.memory.table import method_memory_table
