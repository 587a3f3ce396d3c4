"""Export of trainable TFLM models to Arduino libraries and ESP-IDF components.

Submodules, one concept each: ``c_array`` (model bytes as C++ arrays),
``op_resolver``
(generated ``MicroMutableOpResolver`` registration), ``persistence`` (the
power-cut-safe parameter format), ``fit`` (device fit check), ``report``
(report.json and REPORT.md), ``package`` (Arduino library and ESP-IDF component
layout), ``atomic`` (all-or-nothing output directory), ``quantize`` (int8 PTQ
of the inference model) and ``pipeline`` (the whole export).
"""
