"""Append-only JSONL results file: one finished run per line.

Resumability rests on three rules:

- a run is written only when it has finished, as one line, flushed and
  fsync'ed before the next run starts, so a kill loses at most the run in
  progress;
- a kill during the write leaves at most a truncated last line; reading skips
  it, and the next append first cuts the file back to the last complete line
  so the new record is not glued onto the fragment;
- an exclusive lock (``flock``) on the file stops two sweeps from interleaving
  their writes into the same file.

Damage anywhere but the last line is not what a kill produces, so it is
reported as an error instead of being skipped silently.
"""
import fcntl
import json
import os
from typing import Dict, Iterator, List, Optional

from tflite_tl import atomic


class ResultsFileError(RuntimeError):
  """The results file is damaged, locked by another sweep, or (to merge
  from) missing."""


def _parse(path: str) -> tuple:
  """Returns (records, byte length of the prefix made of complete lines).

  Every record is written as one line ending in a newline, the newline last; a
  final fragment without its newline is therefore a write cut short by a kill,
  and is left out (its run is simply run again).
  """
  if not os.path.exists(path):
    return [], 0
  with open(path, "rb") as f:
    data = f.read()
  good_end = data.rfind(b"\n") + 1
  records = []
  for number, raw in enumerate(data[:good_end].split(b"\n")[:-1], start=1):
    if not raw.strip():
      continue
    try:
      record = json.loads(raw)
      if not isinstance(record, dict) or "run_id" not in record:
        raise ValueError("not an object with a 'run_id'")
    except ValueError as e:
      raise ResultsFileError(
          f"{path}, line {number}: not a valid result record ({e}). An "
          "interrupted sweep can only cut the last line short; this damage "
          "has another cause: fix or delete the line by hand.") from e
    records.append(record)
  return records, good_end


def _line(record: dict) -> str:
  """One record as the one line it is stored as."""
  if "run_id" not in record:
    raise ValueError("A result record needs a 'run_id' entry.")
  line = json.dumps(record, sort_keys=True, separators=(",", ":"))
  if "\n" in line:
    raise ValueError("A result record must serialise to one line.")
  return line


class ResultsStore:
  """Results of finished runs, keyed by run id, backed by a JSONL file.

  Use as a context manager (``with ResultsStore(path) as store:``) to hold the
  write lock; reading without it is allowed.
  """

  def __init__(self, path: str):
    self.path = path
    self._lock_file = None
    self._records: List[dict] = []
    self._by_id: Dict[str, dict] = {}
    self.reload()

  def reload(self) -> None:
    records, _ = _parse(self.path)
    self._records = records
    # A run id appears once; if a file was concatenated by hand, the first wins.
    self._by_id = {}
    for r in records:
      self._by_id.setdefault(r["run_id"], r)

  def __enter__(self) -> "ResultsStore":
    directory = os.path.dirname(os.path.abspath(self.path))
    os.makedirs(directory, exist_ok=True)
    self._lock_file = open(self.path, "ab")
    try:
      fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
      self._lock_file.close()
      self._lock_file = None
      raise ResultsFileError(
          f"{self.path} is being written by another sweep (it holds the file "
          "lock). Wait for it to finish or use another --results file.") from e
    self.reload()
    return self

  def __exit__(self, *exc) -> None:
    if self._lock_file is not None:
      fcntl.flock(self._lock_file, fcntl.LOCK_UN)
      self._lock_file.close()
      self._lock_file = None

  def __contains__(self, run_id: str) -> bool:
    return run_id in self._by_id

  def __len__(self) -> int:
    return len(self._by_id)

  def __iter__(self) -> Iterator[dict]:
    return iter(list(self._by_id.values()))

  def get(self, run_id: str) -> Optional[dict]:
    return self._by_id.get(run_id)

  def records(self) -> List[dict]:
    """All records, one per run id, in the order they were written."""
    return list(self._by_id.values())

  def append(self, record: dict) -> None:
    """Writes one record durably (flush + fsync) before returning."""
    if self._lock_file is None:
      raise ResultsFileError(
          f"Appending to {self.path} needs the write lock: use "
          "`with ResultsStore(path) as store:`.")
    line = _line(record)
    _, good_end = _parse(self.path)
    with open(self.path, "r+b") as f:
      # Cut off a fragment left by a kill so the new line starts clean.
      f.truncate(good_end)
      f.seek(good_end)
      f.write(line.encode("utf-8") + b"\n")
      f.flush()
      os.fsync(f.fileno())
    self._records.append(record)
    self._by_id.setdefault(record["run_id"], record)

  def replace_all(self, records: List[dict]) -> None:
    """Rewrites the file with ``records`` (e.g. after re-measuring a
    column): written aside, fsync'ed, then renamed over the file, so a kill
    leaves either the old or the new file whole."""
    if self._lock_file is None:
      raise ResultsFileError(
          f"Rewriting {self.path} needs the write lock: use "
          "`with ResultsStore(path) as store:`.")
    lines = [_line(r) for r in records]
    atomic.write_file(self.path, "".join(l + "\n" for l in lines))
    self._records = list(records)
    self._by_id = {}
    for r in records:
      self._by_id.setdefault(r["run_id"], r)

  def merge_from(self, path: str) -> int:
    """Appends the records of another results file whose run ids are new.

    Lets parts of a sweep run in parallel into separate files (each holds
    its own lock) and be combined afterwards. Returns the number added.

    Raises:
      ResultsFileError: ``path`` does not exist (a mistyped part would
        otherwise merge nothing, silently, and the report lack its runs).
    """
    if not os.path.exists(path):
      raise ResultsFileError(
          f"Cannot merge runs from {path}: no such results file. Pass the "
          "JSONL file a sweep wrote (its --results).")
    added = 0
    for record in ResultsStore(path).records():
      if record["run_id"] not in self:
        self.append(record)
        added += 1
    return added
