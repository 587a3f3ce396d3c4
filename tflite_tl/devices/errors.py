"""Errors raised while reading board profiles."""


class DeviceProfileError(ValueError):
  """A device profile file is missing, malformed or inconsistent."""


class UnknownDeviceError(DeviceProfileError):
  """The requested board is not in any loaded profile file."""
