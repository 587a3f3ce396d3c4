"""Per-epoch training record returned by ``fit``."""
import dataclasses
import json
from typing import Any, Dict, List, Optional


@dataclasses.dataclass
class History:
  """Mean training loss and accuracy of every epoch, and validation accuracy.

  ``val_accuracy`` entries are None when ``fit`` had no validation data.
  """
  loss: List[float] = dataclasses.field(default_factory=list)
  accuracy: List[float] = dataclasses.field(default_factory=list)
  val_accuracy: List[Optional[float]] = dataclasses.field(default_factory=list)

  @property
  def epochs(self) -> int:
    return len(self.loss)

  def append(self, loss: float, accuracy: float,
             val_accuracy: Optional[float]) -> None:
    self.loss.append(float(loss))
    self.accuracy.append(float(accuracy))
    self.val_accuracy.append(None if val_accuracy is None
                             else float(val_accuracy))

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), sort_keys=True)

  @classmethod
  def from_dict(cls, d: Dict[str, Any]) -> "History":
    return cls(list(d["loss"]), list(d["accuracy"]), list(d["val_accuracy"]))
