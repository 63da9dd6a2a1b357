"""The descriptor families, one module each, and the descriptor specification (:mod:`.spec`).

Each family module defines ``DESCRIPTORS``, a tuple of :class:`~.spec.Descriptor` whose ``compute``
summarises a :class:`features.clip.ClipAnalysis`: :mod:`.pitch` (pitch and periodicity),
:mod:`.spectral` (spectral shape), :mod:`.variability` (spectral variability), :mod:`.amplitude`,
:mod:`.modulation`, :mod:`.onsets` (onsets and roughness). :mod:`features.registry` collects them.
"""
