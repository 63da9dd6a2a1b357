"""audioprobe.features: validated acoustic descriptors, one module per family.

Families (module): pitch and periodicity (:mod:`.pitch`), spectral shape (:mod:`.spectral`),
spectral variability (:mod:`.variability`), amplitude (:mod:`.amplitude`), modulation
(:mod:`.modulation`), onsets and roughness (:mod:`.onsets`). :data:`REGISTRY` maps every
descriptor name to its specification; :func:`compute_clip_features` describes one decoded clip
and :func:`extract_features` a whole manifest, in parallel.

Names are imported on first use, so that ``audioprobe --help`` does not load librosa and Praat.
"""
from __future__ import annotations

from ..lazy import lazy_exports

_WHERE = {"ClipAnalysis": "analysis", "FAMILIES": "config", "AnalysisConfig": "config", "Descriptor": "config",
          "compute_clip_features": "extract", "extract_features": "extract", "COUNT_COLUMNS": "registry",
          "REGISTRY": "registry", "descriptor_table": "registry", "resolve_descriptors": "registry"}

__all__ = list(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
