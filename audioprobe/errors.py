"""Exception hierarchy of audioprobe.

Every error raised on purpose by the package derives from :class:`AudioprobeError`,
so a caller can catch the package's own errors without catching programming bugs.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["AudioprobeError", "ParameterError", "ClipError", "ManifestError", "StageError", "check_choice"]


class AudioprobeError(Exception):
    """Root of every error audioprobe raises on purpose."""


class ParameterError(AudioprobeError, ValueError):
    """A function or command received an invalid argument."""


class ManifestError(AudioprobeError):
    """A manifest file is unreadable or breaks the manifest contract."""


class StageError(AudioprobeError):
    """A stage cannot go on, or produced nothing: an error that is not about one clip.

    Raised when every clip fails the same way (a setting or a model the stage cannot use), or
    when a stage ends without one successful clip; the stage is recorded as failed in ``run.json``.
    """


class ClipError(AudioprobeError):
    """One clip cannot be used: missing, undecodable, empty or with invalid samples.

    Parameters
    ----------
    message : str
        What is wrong with the clip.
    clip_id : str, optional
        The clip's id in the manifest.
    path : str or Path, optional
        The file the clip was read from.
    """

    def __init__(self, message: str, *, clip_id: str | None = None, path: str | Path | None = None):
        self.clip_id = clip_id
        self.path = None if path is None else str(path)
        self.reason = message
        where = []
        if clip_id is not None:
            where.append(f"clip {clip_id!r}")
        if path is not None:
            where.append(f"file {str(path)!r}")
        prefix = (" ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)

    def __reduce__(self):  # keep clip_id/path across process boundaries
        return (_rebuild_clip_error, (self.reason, self.clip_id, self.path))


def _rebuild_clip_error(message: str, clip_id: str | None, path: str | None) -> ClipError:
    return ClipError(message, clip_id=clip_id, path=path)


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise :class:`ParameterError`.

    The message names the parameter, the allowed values and what was received.
    """
    allowed = list(allowed)
    if value not in allowed:
        raise ParameterError(f"{name} must be one of {allowed}, got {value!r}")
    return value
