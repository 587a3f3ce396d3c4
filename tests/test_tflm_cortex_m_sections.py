"""The output sections both Cortex-M linker scripts share."""
from tflite_tl import devices
from tflite_tl.firmware import cortex_m
from tflite_tl.tflm import cortex_m_sections
from tflite_tl.tflm import semihosted


def test_sections_go_to_the_named_regions_with_the_start_up_symbols():
  text = cortex_m_sections.program_sections("FLASH", "RAM")
  for symbol in ("__data_start__", "__data_end__", "__data_load__",
                 "__bss_start__", "__bss_end__", "__init_array_start",
                 "__init_array_end", "__exidx_start", "__exidx_end"):
    assert f"{symbol} = " in text
  assert "} > RAM AT > FLASH" in text  # .data runs in RAM, loads from flash
  assert "CODE" not in text
  assert text.count("{") == text.count("}")


def test_both_linker_scripts_use_them():
  runner = semihosted.linker_script()
  assert cortex_m_sections.program_sections("CODE", "RAM") in runner
  board = cortex_m.linker_script(devices.get_device("nano33ble"), 8192)
  assert cortex_m_sections.program_sections("FLASH", "RAM") in board
