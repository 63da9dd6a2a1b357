"""audioprobe: which acoustic properties does each layer of an audio network encode?

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

from .audio import audio_info, load_audio
from .errors import AudioprobeError, ClipError, ManifestError, ParameterError
from .manifest import check_manifest, read_manifest
from .runner import map_clips
from .runstore import Run

__all__ = ["__version__", "AudioprobeError", "ClipError", "ManifestError", "ParameterError", "Run", "audio_info",
           "check_manifest", "load_audio", "map_clips", "read_manifest"]
