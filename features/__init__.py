"""audioprobe.features: validated acoustic descriptors, one module per family.

Layers, each importing only the ones before it: :mod:`.config` (the analysis settings) ->
:mod:`.signal` (signal building blocks: the analysis signal, librosa's formulas, pitch and
harmonicity tracks, band envelopes, periodograms) -> :mod:`.clip` (:class:`ClipAnalysis`, the
shared per-clip representations) -> :mod:`.descriptors` (one module per family: pitch and
periodicity, spectral shape, spectral variability, amplitude, modulation, onsets and roughness)
-> :mod:`.registry` (:data:`REGISTRY` maps every descriptor name to its specification) ->
:mod:`.meta` (:func:`descriptor_table`, the metadata table) and
:mod:`.describe` (:func:`compute_clip_features` describes one decoded clip, in a worker process) ->
:mod:`.extract` (:func:`extract_features` describes a whole manifest, in parallel) -> :mod:`.cli`.

Names are imported on first use, so that ``audioprobe --help`` does not load librosa and Praat.
"""
from __future__ import annotations

from ..lazy import lazy_exports

_WHERE = {"ClipAnalysis": "clip", "FAMILIES": "config", "AnalysisConfig": "config", "Descriptor": "descriptors.spec",
          "compute_clip_features": "describe", "extract_features": "extract", "COUNT_COLUMNS": "registry",
          "REGISTRY": "registry", "descriptor_table": "meta", "resolve_descriptors": "registry"}

__all__ = list(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
