"""audioprobe: which acoustic properties each layer of an audio network encodes.

The shared core: manifest, audio I/O, run folder, parallel runner, errors, logging and
the CLI. The stages live in the subpackages ``audioprobe.features``,
``audioprobe.models``, ``audioprobe.probes``, ``audioprobe.analysis`` and
``audioprobe.figures``.
"""
from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("audioprobe")
except _metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

from .errors import AudioprobeError, ClipError, ManifestError, ParameterError
from .lazy import lazy_exports

# imported on first use, so that ``audioprobe --help`` does not load numpy, pandas and soundfile
_WHERE = {"audio_info": "audio", "load_audio": "audio", "check_manifest": "manifest", "read_manifest": "manifest",
          "map_clips": "runner", "Run": "runstore"}

__all__ = ["__version__", "AudioprobeError", "ClipError", "ManifestError", "ParameterError", *_WHERE]
_lazy_getattr, _lazy_dir = lazy_exports(__name__, _WHERE)


def __getattr__(name: str) -> object:
    return _lazy_getattr(name)


def __dir__() -> list[str]:
    return sorted({*_lazy_dir(), *globals()})
