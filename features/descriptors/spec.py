"""The descriptor specification: what a column of ``features.parquet`` is and how it is computed.

Every family module of :mod:`features.descriptors` defines its columns as :class:`Descriptor`
objects; :mod:`features.registry` collects them and writes their metadata (``features_meta.csv``).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from ...errors import check_choice
from ..clip import ClipAnalysis
from ..config import FAMILIES, FULL_SCALE_UNIT, PREPROCESSING, PROBE_SCALES, AnalysisConfig

__all__ = ["Descriptor"]


@dataclass(frozen=True)
class Descriptor:
    """One descriptor column: what it is, its unit, and the function that computes it.

    Attributes
    ----------
    name : str
        Column name in ``features.parquet`` (snake_case, no unit suffix unless it disambiguates).
    unit : str
        Unit of the values (``Hz``, ``st``, ``dB``, ``dBFS``, ``fraction``, ...).
    family : str
        One of :data:`FAMILIES`.
    extractor : str
        The reference implementation that computes the frame values.
    probe_scale : {"log", "linear"}
        ``log`` for skewed positive descriptors (F0, centroid...), probed on a log scale.
    settings : tuple of str
        Names of the :class:`AnalysisConfig` fields the values depend on.
    computed : str
        How frames are summarised (over which frames), in words.
    compute : callable(ClipAnalysis) -> dict
        Computes this descriptor and its siblings (all columns of one group at once);
        descriptors sharing a ``compute`` function are computed by one call.
    extra : dict
        Fixed parameters of the computation (recorded in ``features_meta.csv``).
    """

    name: str
    unit: str
    family: str
    extractor: str
    probe_scale: str
    settings: tuple[str, ...]
    computed: str
    compute: Callable[[ClipAnalysis], dict[str, float]]
    extra: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        """Validate ``family`` and ``probe_scale``."""
        check_choice("family", self.family, FAMILIES)
        check_choice("probe_scale", self.probe_scale, PROBE_SCALES)

    def parameters(self, config: AnalysisConfig) -> dict:
        """Every parameter the values depend on, for ``features_meta.csv``."""
        params = {"sr": config.sr, "lowcut_hz": config.lowcut_hz, "preprocessing": PREPROCESSING,
                  "computed": self.computed}
        if self.unit == FULL_SCALE_UNIT:
            params["beyond_full_scale"] = ("NaN for a clip whose file holds samples beyond full scale "
                                           "(n_over_full_scale > 0): its level re full scale is unknown")
        params.update({key: getattr(config, key) for key in self.settings})
        params.update(self.extra)
        return params
