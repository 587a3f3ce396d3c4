"""One flash image for several .tflite models, each constant stored once.

The train, predict (and fisher, infer) graphs of an export carry the same
frozen weights, and every int8 tensor carries its per-channel scales and
int64 zero points (12 B per channel: for MobileNetV2-0.35 that is 145 KB per
model, more than a third of its int8 weights). TFLM reads all of them in
place from the flatbuffer, and in a flatbuffer a vector field holds only a
forward offset (unsigned, relative to the field) to the vector. So one image
can hold the models, then a pool of the distinct vectors: ``link`` repacks
each model with its large vectors emptied and rewrites their offsets to
reach the pool's copy. Each model starts 16-byte aligned, as does each
pooled vector's data, and TFLM runs it unchanged; read from its start to the
end of the image, each model is a valid flatbuffer.

Only byte-identical vectors of the same element size are shared, so every
model reads exactly the constants it had; ``check`` proves that for each
buffer and each quantization vector of each model.
"""
import dataclasses
import struct
from typing import Dict, List, Sequence, Tuple

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tflite_tl.flatbuffer import edit
from tflite_tl.flatbuffer import reader

# Vectors smaller than this stay in their model: their offset and the empty
# vector left behind cost 8 bytes.
MIN_POOLED_BYTES = 64
# TFLM reads a model and its buffers in place; the converter aligns both.
ALIGNMENT = 16
# vtable slots: Buffer.data, QuantizationParameters.scale and .zero_point.
_BUFFER_DATA = 4
_QUANT_SCALE = 8
_QUANT_ZERO_POINT = 10
_ELEMENT_BYTES = {_BUFFER_DATA: 1, _QUANT_SCALE: 4, _QUANT_ZERO_POINT: 8}


@dataclasses.dataclass(frozen=True)
class LinkedImage:
  """The models, in the order given, then the pool of shared vectors.

  ``offsets[i]``/``lengths[i]``: where model i starts and its own bytes
  (its pooled constants lie beyond them, in the pool at ``pool_offset``).
  ``original_bytes``: the models' sizes before linking, summed.
  """
  image: bytes
  offsets: Tuple[int, ...]
  lengths: Tuple[int, ...]
  pool_offset: int
  original_bytes: int

  def model(self, i: int) -> bytes:
    """Model i as TFLM reads it: from its start to the end of the image."""
    return self.image[self.offsets[i]:]

  @property
  def pool_bytes(self) -> int:
    return len(self.image) - self.pool_offset

  @property
  def saved_bytes(self) -> int:
    """Bytes fewer than the models in separate files (alignment padding
    can make it slightly negative when nothing is worth pooling)."""
    return self.original_bytes - len(self.image)


# A vector field: (subgraph, tensor) for a quantization vector, or
# (-1, buffer index) for a buffer's data; and its vtable slot.
_Field = Tuple[Tuple[int, int], int]


def _tables(model) -> List[Tuple[Tuple[int, int], int, object]]:
  """(locator, slot, table) of every vector field ``link`` may pool."""
  out = []
  for i in range(model.BuffersLength()):
    out.append(((-1, i), _BUFFER_DATA, model.Buffers(i)._tab))
  for s in range(model.SubgraphsLength()):
    sg = model.Subgraphs(s)
    for t in range(sg.TensorsLength()):
      q = sg.Tensors(t).Quantization()
      if q is not None:
        out.append(((s, t), _QUANT_SCALE, q._tab))
        out.append(((s, t), _QUANT_ZERO_POINT, q._tab))
  return out


def _vectors(model_bytes: bytes) -> Dict[_Field, bytes]:
  """{field: the bytes of its vector} for every present vector field."""
  data = memoryview(model_bytes)
  out = {}
  for where, slot, tab in _tables(reader.root(model_bytes)):
    o = tab.Offset(slot)
    if o:
      start = tab.Vector(o)
      out[(where, slot)] = bytes(
          data[start:start + tab.VectorLen(o) * _ELEMENT_BYTES[slot]])
  return out


def _field_positions(model_bytes: bytes) -> Dict[_Field, int]:
  """{field: position of its offset} for every present vector field."""
  return {(where, slot): tab.Pos + tab.Offset(slot)
          for where, slot, tab in _tables(reader.root(model_bytes))
          if tab.Offset(slot)}


class _AlignedBuffer(schema.BufferT):
  """A buffer packed as the converter packs one: data 16-byte aligned."""

  def Pack(self, builder):
    data = None
    if self.data is not None:
      payload = np.asarray(self.data, np.uint8).tobytes()
      builder.StartVector(1, len(payload), ALIGNMENT)
      builder.head -= len(payload)
      builder.Bytes[builder.head:builder.head + len(payload)] = payload
      data = builder.EndVector(len(payload))
    schema.BufferStart(builder)
    if data is not None:
      schema.BufferAddData(builder, data)
    schema.BufferAddOffset(builder, self.offset)
    schema.BufferAddSize(builder, self.size)
    return schema.BufferEnd(builder)


def _emptied(model_bytes: bytes, pooled: Sequence[_Field]) -> bytes:
  """``model_bytes`` repacked with the ``pooled`` vectors empty (the field
  stays, for ``link`` to point at the pool)."""
  pooled = set(pooled)
  model = edit.unpack(model_bytes)
  buffers = []
  for i, b in enumerate(model.buffers):
    nb = _AlignedBuffer()
    nb.data = (np.zeros(0, np.uint8) if ((-1, i), _BUFFER_DATA) in pooled
               else b.data)
    nb.offset, nb.size = b.offset, b.size
    buffers.append(nb)
  model.buffers = buffers
  for s, sg in enumerate(model.subgraphs):
    for t, tensor in enumerate(sg.tensors):
      q = tensor.quantization
      if ((s, t), _QUANT_SCALE) in pooled:
        q.scale = np.zeros(0, np.float32)
      if ((s, t), _QUANT_ZERO_POINT) in pooled:
        q.zeroPoint = np.zeros(0, np.int64)
  builder = flatbuffers.Builder(1024)
  builder.Finish(model.Pack(builder), file_identifier=reader.IDENTIFIER)
  return bytes(builder.Output())


def _aligned(n: int, a: int = ALIGNMENT) -> int:
  return (n + a - 1) // a * a


def link(models: Sequence[bytes],
         min_pooled_bytes: int = MIN_POOLED_BYTES) -> LinkedImage:
  """One image of ``models`` whose vectors of at least ``min_pooled_bytes``
  are stored once, in a pool after the last model."""
  originals = [bytes(m) for m in models]
  for m in originals:
    reader.check(m)
  pool_keys: Dict[Tuple[int, bytes], int] = {}   # (element bytes, data)
  pooled: List[Dict[_Field, Tuple[int, bytes]]] = []
  for m in originals:
    chosen = {}
    for field, data in _vectors(m).items():
      if len(data) >= min_pooled_bytes:
        key = (_ELEMENT_BYTES[field[1]], data)
        pool_keys.setdefault(key, len(pool_keys))
        chosen[field] = key
    pooled.append(chosen)
  repacked = [_emptied(m, list(chosen)) if chosen else m
              for m, chosen in zip(originals, pooled)]
  offsets, at = [], 0
  for m in repacked:
    offsets.append(at)
    at = _aligned(at + len(m))
  pool_offset = at
  data_at = {}
  for key in pool_keys:          # insertion order: deterministic
    at = _aligned(at + 4) - 4    # the data, after the length, aligned
    data_at[key] = at + 4
    at += 4 + len(key[1])
  image = bytearray(_aligned(at))
  for m, start in zip(repacked, offsets):
    image[start:start + len(m)] = m
  for (element, data), pos in data_at.items():
    struct.pack_into("<I", image, pos - 4, len(data) // element)
    image[pos:pos + len(data)] = data
  for m, start, chosen in zip(repacked, offsets, pooled):
    fields = _field_positions(m)
    for field, key in chosen.items():
      at_field = start + fields[field]
      struct.pack_into("<I", image, at_field,
                       data_at[key] - 4 - at_field)
  linked = LinkedImage(bytes(image), tuple(offsets),
                       tuple(len(m) for m in repacked), pool_offset,
                       sum(len(m) for m in originals))
  check(linked, originals)
  if len(linked.image) >= _aligned_concatenation(originals):
    # Small models: the repacking's alignment costs more than it saves.
    return _concatenated(originals)
  return linked


def _aligned_concatenation(models: Sequence[bytes]) -> int:
  return sum(_aligned(len(m)) for m in models)


def _concatenated(models: Sequence[bytes]) -> LinkedImage:
  """The models one after another, nothing pooled."""
  offsets, image = [], bytearray()
  for m in models:
    offsets.append(len(image))
    image += m + bytes(_aligned(len(m)) - len(m))
  return LinkedImage(bytes(image), tuple(offsets),
                     tuple(len(m) for m in models), len(image),
                     sum(len(m) for m in models))


def check(linked: LinkedImage, originals: Sequence[bytes]) -> None:
  """Raises ValueError unless every model of ``linked`` reads, vector for
  vector, the constants of its original."""
  for i, original in enumerate(originals):
    got, want = _vectors(linked.model(i)), _vectors(original)
    # An emptied-then-pooled vector reads its data back; an empty vector
    # in the original may stay empty.
    bad = sorted(f for f in set(got) | set(want)
                 if got.get(f, b"") != want.get(f, b""))
    if bad:
      raise ValueError(f"Linked model {i} does not read its own constants "
                       f"(first difference: {bad[0]}).")
