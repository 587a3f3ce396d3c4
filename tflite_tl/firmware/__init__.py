"""Firmware packaging: Arduino libraries and ESP-IDF components of trainable
TFLM models.

Submodules, one concept each: ``c_array`` (model bytes as C++ arrays),
``op_resolver`` (generated ``MicroMutableOpResolver`` registration),
``persistence`` (the power-cut-safe parameter format), ``fit`` (device fit
check), ``package`` (library and component layout) and ``report``
(report.json and REPORT.md). The stages that produce the models are
orchestrated by ``tflite_tl.pipeline``.
"""
