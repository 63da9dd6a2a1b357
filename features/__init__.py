"""audioprobe.features: validated acoustic descriptors, one module per family.

Families (module): pitch and periodicity (:mod:`.pitch`), spectral shape (:mod:`.spectral`),
spectral variability (:mod:`.variability`), amplitude (:mod:`.amplitude`), modulation
(:mod:`.modulation`), onsets and roughness (:mod:`.onsets`). :data:`REGISTRY` maps every
descriptor name to its specification; :func:`compute_clip_features` describes one decoded clip
and :func:`extract_features` a whole manifest, in parallel.
"""
from .analysis import ClipAnalysis
from .config import FAMILIES, AnalysisConfig, Descriptor
from .extract import compute_clip_features, extract_features
from .registry import COUNT_COLUMNS, REGISTRY, descriptor_table, resolve_descriptors

__all__ = ["AnalysisConfig", "COUNT_COLUMNS", "ClipAnalysis", "Descriptor", "FAMILIES", "REGISTRY",
           "compute_clip_features", "descriptor_table", "extract_features", "resolve_descriptors"]
