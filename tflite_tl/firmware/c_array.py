"""Byte arrays as C++ source: a header with the declaration, a .cc with the data.

The array is ``const`` so the linker keeps it in flash (rodata) on every
supported board, and ``alignas(16)`` because TFLM reads the flatbuffer in place
and needs its buffers aligned.
"""
import re
from typing import Dict

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BYTES_PER_LINE = 12


def _check_symbol(symbol: str) -> None:
  if not _IDENT.match(symbol):
    raise ValueError(
        f"C symbol {symbol!r} is not a valid identifier: use letters, digits "
        "and '_' and do not start with a digit.")


def header_guard(filename: str) -> str:
  return "TFLITE_TL_" + re.sub(r"[^A-Za-z0-9]", "_", filename).upper() + "_"


def c_array_header(symbol: str, filename: str, comment: str = "") -> str:
  """Declaration of ``symbol`` (bytes) and ``symbol_len``, usable from C and C++."""
  _check_symbol(symbol)
  guard = header_guard(filename)
  lines = [f"// {line}".rstrip() for line in comment.splitlines()]
  lines += [
      f"#ifndef {guard}",
      f"#define {guard}",
      "",
      "#include <stddef.h>",
      "#include <stdint.h>",
      "",
      "#ifdef __cplusplus",
      'extern "C" {',
      "#endif",
      "",
      f"extern const uint8_t {symbol}[];",
      f"extern const size_t {symbol}_len;",
      "",
      "#ifdef __cplusplus",
      "}  // extern \"C\"",
      "#endif",
      "",
      f"#endif  // {guard}",
      "",
  ]
  return "\n".join(lines)


def c_array_source(data: bytes, symbol: str, header_filename: str,
                   comment: str = "") -> str:
  """C++ definition of ``symbol``: const, 16-byte aligned, length beside it."""
  _check_symbol(symbol)
  lines = [f"// {line}".rstrip() for line in comment.splitlines()]
  lines += [
      f'#include "{header_filename}"',
      "",
      f"alignas(16) const uint8_t {symbol}[] = {{",
  ]
  for start in range(0, len(data), _BYTES_PER_LINE):
    chunk = data[start:start + _BYTES_PER_LINE]
    lines.append("    " + ", ".join(f"0x{b:02x}" for b in chunk) + ",")
  lines += [
      "};",
      f"const size_t {symbol}_len = {len(data)};",
      "",
  ]
  return "\n".join(lines)


def c_array_files(data: bytes, symbol: str, basename: str,
                  comment: str = "") -> Dict[str, str]:
  """Returns {basename.h: header, basename.cc: source} for ``data``."""
  if not data:
    raise ValueError(f"Refusing to write an empty array for {symbol!r}.")
  header = basename + ".h"
  return {
      header: c_array_header(symbol, header, comment),
      basename + ".cc": c_array_source(data, symbol, header, comment),
  }
