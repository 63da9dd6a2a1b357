"""Provenance facts recorded in every run.json: versions, git hash, host, command line."""
from __future__ import annotations

import functools
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["environment_provenance", "library_versions", "git_hash"]

_LIBRARIES = ("audioprobe", "numpy", "scipy", "pandas", "pyarrow", "torch", "librosa", "praat-parselmouth",
              "soundfile", "soxr", "scikit-learn", "statsmodels", "matplotlib", "seaborn", "dask",
              "distributed", "zarr")


def library_versions() -> dict[str, str | None]:
    """Installed version of each library audioprobe relies on (None when absent)."""
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@functools.lru_cache(maxsize=1)
def git_hash() -> str | None:
    """Return the commit of audioprobe's source tree, when it is a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment_provenance() -> dict:
    """Versions, git hash, Python, host and command line of the current process."""
    return {
        "versions": library_versions(),
        "git_hash": git_hash(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": platform.node(),
        "command_line": sys.argv,
    }
