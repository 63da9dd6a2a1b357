"""Signal building blocks of the descriptors, each independent of the per-clip analysis.

:mod:`.preprocess` (the analysis signal), :mod:`.dsp` (librosa's frame-level formulas in numpy),
:mod:`.pitch_track` (Praat ac / pyin pitch and Praat cc harmonicity tracks; :mod:`.harmonicity`
is Praat's cc algorithm vectorised), :mod:`.envelopes` (octave-band Hilbert envelopes),
:mod:`.logfreq` (log-frequency filterbank), :mod:`.periodogram` (modulation spectra). They take
arrays and settings and return arrays; :class:`features.clip.ClipAnalysis` combines them per clip.
"""
