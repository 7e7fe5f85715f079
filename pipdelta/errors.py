"""The errors pipdelta raises: each says what went wrong and what the user can do about it."""

from __future__ import annotations


class PipdeltaError(Exception):
    """Base of every error pipdelta reports to a user as one line."""

    #: the command line's exit status for this error
    exit_status = 1


class UsageError(PipdeltaError):
    """The command line asks for something that cannot be done as given."""

    exit_status = 2


class InvalidWheel(PipdeltaError, ValueError):
    """A file is not a wheel pipdelta can read (not a ZIP, bad name, broken layout)."""


class PatchFormatError(PipdeltaError, ValueError):
    """A patch is truncated, corrupt, of an unknown version or declares absurd sizes."""


class SourceMismatch(PipdeltaError):
    """The old content on this machine is not what the patch was made from."""


class EngineMismatch(PipdeltaError):
    """This machine's deflate engines do not reproduce what a patch asks for."""


class ReconstructionFailed(PipdeltaError):
    """The rebuilt wheel does not have the hash the patch promises; nothing was written."""


class DistributionNotFound(PipdeltaError):
    """No installed distribution of that name (or version) in the target environment."""


class RangeError(PipdeltaError):
    """The primary index would not serve, or served wrong, the byte ranges of a wheel a patch needs."""
