"""The exported App as Cortex-M4F firmware: linked with each Cortex-M board's
flash and SRAM as the linker's regions (an export the fit check accepts
links, one it rejects does not), and run in QEMU mps2-an386 with
deterministic instruction counts."""
import dataclasses

import pytest

import firmware_fixtures as ff
from tflite_tl import devices
from tflite_tl.firmware import cortex_m
from tflite_tl.firmware import fit as fit_lib
from tflite_tl.firmware import package
from tflite_tl.firmware import instruction_counts

RESOLUTION = 16


def _fit(spec):
  ram, flash = package.memory_consumers(spec)
  return fit_lib.check_fit(spec.device, ram_consumers=ram,
                           flash_consumers=flash)


def test_linker_script_carries_each_boards_memory():
  boards = cortex_m.cortex_m_devices(devices.load_devices())
  assert {"nano33ble", "pico", "pico2", "stm32f746", "stm32h743",
          "portenta_h7"} <= {d.name for d in boards}
  assert "esp32" not in {d.name for d in boards}
  for d in boards:
    script = cortex_m.linker_script(d, 8192)
    assert f"LENGTH = {d.flash_bytes - 8192}\n" in script
    assert f"RAM (rwx)   : ORIGIN = 0x20000000, LENGTH = " \
           f"{d.usable_sram_bytes}\n" in script
  nano = devices.get_device("nano33ble")
  assert "LENGTH = 262144" in cortex_m.linker_script(nano, 8192)
  with pytest.raises(ValueError, match="not a Cortex-M board"):
    cortex_m.linker_script(devices.get_device("esp32"), 8192)


def test_qemu_output_is_parsed():
  run = cortex_m.parse_output(
      "calibration 40000 200000\nready\nicount B 100\npred 1 b 0.5\n"
      "icount I 2000\nepoch 1 loss 1.0\nicount T 8000\ndone\n")
  assert run.per_tick == 5.0 and run.lines == ["ready", "pred 1 b 0.5",
                                               "epoch 1 loss 1.0"]
  counts = cortex_m.instruction_counts(run, {0: 4})
  assert counts == {"per_prediction": 10000.0, "per_train_step": 10000.0,
                    "begin": 500.0}


def test_ram_sections_separate_globals_from_the_reserves():
  ram = cortex_m.parse_ram_sections(
      "nano33ble.elf  :\nsection   size   addr\n.vectors   64   0\n"
      ".text   217008   64\n.init_array   16   217080\n"
      ".data   2776   536870912\n.bss   58104   536873696\n"
      ".heap   4096   536931800\n.stack   8192   536935896\n"
      ".debug_info   212680   0\nTotal   748505\n")
  assert ram == cortex_m.RamSections(2776, 58104, 4096, 8192)
  assert ram.globals == 60880 and ram.total == 73168


@pytest.fixture(scope="module")
def firmware_objects(tflm_root, tmp_path_factory):
  """The tl-flavor tiny export compiled once for Cortex-M4F."""
  del tflm_root
  spec = ff.tiny_case("tl", "float", resolution=RESOLUTION).spec
  out = tmp_path_factory.mktemp("m4f")
  src = ff.library_dir(spec, out / "export")
  return spec, cortex_m.compile_firmware(src, out / "obj")


@pytest.mark.slow  # Cortex-M4F compile of the whole library
def test_an_export_that_fits_links_on_every_cortex_m_board(firmware_objects,
                                                           tmp_path):
  spec, objects = firmware_objects
  for board in cortex_m.cortex_m_devices(devices.load_devices()):
    board_spec = dataclasses.replace(spec, device=board)
    result = _fit(board_spec)
    assert result.fits, board.name
    elf = cortex_m.link_firmware(objects, board, spec.storage_flash_bytes,
                                 tmp_path / f"{board.name}.elf")
    sizes = cortex_m.size(elf)
    ram = cortex_m.ram_sections(elf)
    margin = cortex_m.fit_margin(board, result, sizes,
                                 spec.storage_flash_bytes, ram)
    print(board.name, margin.to_dict(), dataclasses.asdict(sizes),
          dataclasses.asdict(ram))
    # Berkeley bss counts the heap and stack reserves; the sections do not.
    assert (ram.heap, ram.stack) == (cortex_m.HEAP_BYTES,
                                     cortex_m.STACK_BYTES)
    assert sizes.ram >= ram.total
    assert ram.total <= board.usable_sram_bytes
    # What the fit check counts is in the image: the arena, the samples.
    assert sizes.bss >= spec.arena_bytes + spec.sample_buffer_bytes
    # The other globals, measured, stay within the modelled allowance the
    # fit check counts without a link.
    other = ram.globals - instruction_counts.counted_ram(board_spec)
    assert 0 < other <= fit_lib.FIRMWARE_GLOBALS_ALLOWANCE["cortex-m"]
    assert margin.linked_ram <= margin.report_ram


@pytest.mark.slow  # Cortex-M4F compile of the whole library
def test_an_export_that_does_not_fit_fails_to_link(tflm_root, tmp_path):
  """More stored samples than the Nano's SRAM holds: the fit check says no,
  and so does the linker."""
  del tflm_root
  base = ff.tiny_case("tl", "float", resolution=RESOLUTION).spec
  spec = dataclasses.replace(base, max_samples=1100)
  result = _fit(spec)
  assert not result.ram_fits
  src = ff.library_dir(spec, tmp_path / "export")
  with pytest.raises(cortex_m.LinkError,
                     match=r"nano33ble.*region `RAM' overflowed"):
    cortex_m.build_firmware(src, spec.device, spec.storage_flash_bytes,
                            tmp_path / "too_big.elf")


@pytest.mark.slow  # Cortex-M4F compile of the whole library
def test_firmware_runs_in_qemu_with_instruction_counts(firmware_objects,
                                                       tmp_path):
  spec, objects = firmware_objects
  elf = cortex_m.link_firmware(objects, spec.device, spec.storage_flash_bytes,
                               tmp_path / "nano33ble.elf")
  samples = 2 * spec.batch_size
  run = cortex_m.run_session(elf, instruction_counts.session(spec, samples, 1, 2))
  assert run.lines[0] == "ready"
  assert sum(line.startswith("pred ") for line in run.lines) == 3
  assert any(line.startswith("epoch 1 loss") for line in run.lines)
  assert "saved seq=1" in run.lines and "restored seq=1" in run.lines
  counts = cortex_m.instruction_counts(run, {0: samples // spec.batch_size})
  print(counts)
  assert counts["per_train_step"] > counts["per_prediction"] > 0
  again = cortex_m.run_session(elf, instruction_counts.session(spec, samples, 1, 2))
  assert again.instructions == run.instructions  # deterministic


@pytest.mark.slow  # Cortex-M4F compile of the whole library
def test_samples_in_flash_link_and_train_in_qemu(tflm_root, tmp_path):
  """The 1,100 samples that overflow the Nano's SRAM above, kept in flash:
  the fit check and the linker accept them (RAM holds one batch, the sample
  area sits after the parameter slots), and the App trains on batches read
  from that flash in QEMU."""
  del tflm_root
  base = ff.tiny_case("tl", "float", resolution=RESOLUTION).spec
  spec = dataclasses.replace(base, max_samples=1100, sample_storage="flash")
  result = _fit(spec)
  assert result.fits
  src = ff.library_dir(spec, tmp_path / "export")
  elf = cortex_m.build_firmware(src, spec.device, spec.storage_region_bytes,
                                tmp_path / "nano33ble.elf")
  samples = 2 * spec.batch_size
  run = cortex_m.run_session(elf, instruction_counts.session(spec, samples, 1,
                                                             2))
  assert run.lines[0] == "ready"
  assert f"ok samples={samples}" in run.lines
  assert any(line.startswith("epoch 1 loss") for line in run.lines)
  assert "saved seq=1" in run.lines and "restored seq=1" in run.lines
  counts = cortex_m.instruction_counts(run, {0: samples // spec.batch_size})
  print("flash mode:", counts)
