"""Running lowered models in the real TFLM interpreter (tflite_micro), in a
subprocess, and measuring their arena with TFLM's recording allocator."""
from tflite_tl.lower.builtins import NonBuiltinOpError
from tflite_tl.lower.builtins import check_builtin_only
from tflite_tl.lower.builtins import op_counts
from tflite_tl.tflm.arena import ArenaReport
from tflite_tl.tflm.arena import parse_allocations
from tflite_tl.tflm.runner import RunResult
from tflite_tl.tflm.runner import TflmRuntimeError
from tflite_tl.tflm.runner import TrainRun
from tflite_tl.tflm.runner import measure_arena
from tflite_tl.tflm.runner import run_model
from tflite_tl.tflm.runner import run_train_steps
