"""The export pipeline: one module orchestrating the stages
load -> rewrite -> fine-tune -> lower -> verify -> package.

``run_export(ExportConfig(out=...))`` is ``python -m export``. The stages
themselves live in their packages (``models``/``data``, ``rewrite``,
``train``, ``lower``, ``tflm``, ``verify``, ``firmware``); this package only
calls them in order, and nothing imports it back.
"""
from tflite_tl.pipeline.config import DEFAULT_MODELS
from tflite_tl.pipeline.config import KERNEL_CHOICES
from tflite_tl.pipeline.config import MAX_AUTO_SAMPLES
from tflite_tl.pipeline.config import PRECISION_CHOICES
from tflite_tl.pipeline.config import ExportConfig
from tflite_tl.pipeline.config import ExportError
from tflite_tl.pipeline.export import ExportResult
from tflite_tl.pipeline.export import run_export
