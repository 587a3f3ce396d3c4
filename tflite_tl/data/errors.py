"""Errors raised by the dataset loaders."""


class DatasetNotInstalledError(FileNotFoundError):
  """A dataset's files or package are missing; the message names the install command."""

  def __init__(self, dataset: str, what: str, install_command: str):
    self.dataset = dataset
    self.install_command = install_command
    super().__init__(
        f"Dataset {dataset!r} is not installed: {what}. Install it with "
        f"`{install_command}` (nothing is downloaded at run time).")
