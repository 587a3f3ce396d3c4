"""Byte arrays as C++ source: a header with the declaration, a .cc with the data.

The array is ``const`` so the linker keeps it in flash (rodata) on every
supported board, and ``alignas(16)`` because TFLM reads the flatbuffer in place
and needs its buffers aligned.
"""
import re
from typing import Dict, Sequence, Tuple

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BYTES_PER_LINE = 12


def _check_symbol(symbol: str) -> None:
  if not _IDENT.match(symbol):
    raise ValueError(
        f"C symbol {symbol!r} is not a valid identifier: use letters, digits "
        "and '_' and do not start with a digit.")


def header_guard(filename: str) -> str:
  return "TFLITE_TL_" + re.sub(r"[^A-Za-z0-9]", "_", filename).upper() + "_"


def c_array_header(symbol: str, filename: str, comment: str = "",
                   pointer: bool = False) -> str:
  """Declaration of ``symbol`` (bytes) and ``symbol_len``, usable from C and
  C++; ``pointer``: a constant pointer into another array, used the same
  way as an array of its own."""
  _check_symbol(symbol)
  declaration = (f"extern const uint8_t* const {symbol};" if pointer
                 else f"extern const uint8_t {symbol}[];")
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
      declaration,
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


def image_files(image: bytes, symbol: str, basename: str,
                views: Sequence[Tuple[str, str, int, int, str]],
                comment: str = "") -> Dict[str, str]:
  """One array ``symbol`` holding ``image`` and, per view (symbol, header
  basename, offset, length, what), a header declaring a pointer to its
  offset; the pointers are defined beside the array, so they are constant
  (in flash) and a view's data is the image's from its offset on."""
  files = c_array_files(image, symbol, basename, comment)
  source = files[basename + ".cc"]
  defs = [f'#include "{view_base}.h"' for _, view_base, _, _, _ in views]
  defs.append("")
  for view, _, offset, length, _ in views:
    _check_symbol(view)
    if offset % 16:
      raise ValueError(f"{view} would start at {offset}, not 16-byte "
                       "aligned.")
    defs += [f"const uint8_t* const {view} = {symbol} + {offset};",
             f"const size_t {view}_len = {length};"]
  files[basename + ".cc"] = source + "\n".join(defs) + "\n"
  for view, view_base, offset, length, what in views:
    files[view_base + ".h"] = c_array_header(
        view, view_base + ".h",
        f"{what}\n{length} bytes of its own at offset {offset} of "
        f"{symbol}; its pooled constants follow in that array.\n{comment}",
        pointer=True)
  return files
