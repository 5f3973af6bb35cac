"""Every error pixzip raises on bad input is a PixzipError with a one-line message."""


class PixzipError(Exception):
    """Base class of pixzip's errors."""


class FormatError(PixzipError):
    """The data is not a .pxz file this version can read (magic, version, flags)."""


class TruncatedError(FormatError):
    """The file ends before its header or payload does."""


class UnknownModelError(PixzipError):
    """The file names a model that is not installed, or whose hash differs."""


class ModelFileError(PixzipError):
    """A model file that cannot be used: unreadable, damaged, or of a model
    format (integer arithmetic) this pixzip does not run."""


class LimitError(PixzipError):
    """The claimed image size exceeds the decoder's limits."""


class CorruptError(PixzipError):
    """The payload does not decode to the pixels it was made from (checksum, leftovers)."""


class ImageError(PixzipError):
    """An input image that pixzip cannot compress (unreadable, unsupported mode)."""


def describe_os_error(path, error: OSError) -> str:
    """One line naming the file and what is wrong with it."""
    reason = {FileNotFoundError: "no such file", IsADirectoryError: "is a directory",
              PermissionError: "permission denied"}.get(type(error), error.strerror or str(error))
    return f"{path}: {reason}"
