"""The lab's own errors: each is reported as one line naming what is wrong (exit code 2), never a traceback.

`SpecError` (a malformed spec or rule file) belongs to the file checker the server shares with the
workloads; it is re-exported here so that the lab catches one family of errors.
"""

from __future__ import annotations

from servers.core.tomlcheck import SpecError


class LabError(Exception):
    """A problem the user can fix, told in one line."""


class UsageError(LabError):
    """A command-line flag, or a combination of flags, that cannot work."""


class ResultsError(LabError):
    """A result folder or results file that is missing, empty, unreadable or of another version."""


class ServiceError(LabError):
    """A service (MongoDB, Redis) could not be started or reached; the message says which and why."""


class GeneratorError(LabError):
    """The load generators could not be started, or did not attach in time."""


__all__ = ["GeneratorError", "LabError", "ResultsError", "ServiceError", "SpecError", "UsageError"]
