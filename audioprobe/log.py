"""The package's one logger and its progress bar.

Everything audioprobe reports goes through the ``audioprobe`` logger; the CLI's
``-v``/``-q`` flags set its level with :func:`set_verbosity`. Progress bars are
tqdm bars that follow the same switch: quiet turns them off.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

__all__ = ["logger", "set_verbosity", "progress", "progress_enabled"]

logger = logging.getLogger("audioprobe")
_state = {"progress": True}


class _StderrHandler(logging.StreamHandler):
    """A handler that writes to the current ``sys.stderr`` (a caller may have replaced it since)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets it; the current sys.stderr always wins
        pass


def set_verbosity(verbose: int = 0, quiet: bool = False) -> None:
    """Set the log level and the progress-bar switch.

    Parameters
    ----------
    verbose : int
        0 -> INFO, 1 or more -> DEBUG.
    quiet : bool
        Only warnings and errors, and no progress bars.
    """
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    logger.setLevel(level)
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("audioprobe: %(message)s"))
        logger.addHandler(handler)
    _state["progress"] = not quiet


def progress_enabled() -> bool:
    """Whether progress bars are shown."""
    return _state["progress"]


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "clip", disable: bool | None = None, **kwargs: Any) -> tqdm:
    """Return a tqdm bar showing count, rate and ETA, silenced by quiet mode."""
    if disable is None:
        disable = not _state["progress"]
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True,
                file=sys.stderr, **kwargs)
