"""The GNU ld output sections every Cortex-M program of the project shares.

The TFLM runner built for QEMU (:mod:`tflite_tl.tflm.semihosted`) and the
exported App's firmware (:mod:`tflite_tl.firmware.cortex_m`) place code,
read-only data, unwind tables, constructors, .data and .bss the same way;
only their memory regions and where the heap and the stack go differ, so
each linker script adds those around ``program_sections``.

The symbols are the ones the start-up code (``csrc/tl_semihosted_start.c``,
``firmware/csrc/qemu/tl_qemu_app.cc``) and newlib read: ``__data_start__``,
``__data_end__``, ``__data_load__`` (copy .data from flash), ``__bss_start__``,
``__bss_end__`` (zero .bss), the init/fini array bounds (C++ constructors)
and ``__exidx_start`` / ``__exidx_end`` (unwinding).
"""


def program_sections(code: str, ram: str) -> str:
  """The output sections from the vector table to .bss, for a script whose
  code region is named ``code`` and whose data region is ``ram``."""
  return f"""  .vectors : {{ KEEP(*(.vectors)) }} > {code}
  .text :
  {{
    *(.text*)
    KEEP(*(.init))
    KEEP(*(.fini))
    *(.rodata*)
  }} > {code}
  .ARM.extab : {{ *(.ARM.extab* .gnu.linkonce.armextab.*) }} > {code}
  .ARM.exidx :
  {{
    __exidx_start = .;
    *(.ARM.exidx* .gnu.linkonce.armexidx.*)
    __exidx_end = .;
  }} > {code}
  .init_array :
  {{
    __preinit_array_start = .;
    KEEP(*(.preinit_array*))
    __preinit_array_end = .;
    __init_array_start = .;
    KEEP(*(SORT(.init_array.*)))
    KEEP(*(.init_array*))
    __init_array_end = .;
    __fini_array_start = .;
    KEEP(*(.fini_array*))
    __fini_array_end = .;
  }} > {code}
  .data : ALIGN(4)
  {{
    __data_start__ = .;
    *(.data*)
    . = ALIGN(4);
    __data_end__ = .;
  }} > {ram} AT > {code}
  __data_load__ = LOADADDR(.data);
  .bss (NOLOAD) : ALIGN(4)
  {{
    __bss_start__ = .;
    *(.bss*)
    *(COMMON)
    . = ALIGN(4);
    __bss_end__ = .;
  }} > {ram}
"""
