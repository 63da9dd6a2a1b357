"""The descriptor registry: every descriptor column by name, and its metadata table.

Names are stable: they are the column names of ``features.parquet`` and the ``name`` column of
``features_meta.csv``. List them with ``list(REGISTRY)``, or
with their metadata by :func:`features.meta.descriptor_table`. No pandas here: worker processes import this.
"""
from __future__ import annotations

from collections.abc import Iterable

from ..errors import ParameterError
from .config import FAMILIES
from .descriptors import amplitude, modulation, onsets, pitch, spectral, variability
from .descriptors.spec import Descriptor

__all__ = ["REGISTRY", "COUNT_COLUMNS", "resolve_descriptors"]

REGISTRY: dict[str, Descriptor] = {
    d.name: d for module in (pitch, spectral, variability, amplitude, modulation, onsets) for d in module.DESCRIPTORS
}
COUNT_COLUMNS = ("n_frames", "n_nonsilent_frames", "n_voiced_frames", "n_over_full_scale")


def resolve_descriptors(descriptors: Iterable[str] | str | None = None) -> list[str]:
    """Expand a selection of descriptor and family names to descriptor names, in registry order.

    Parameters
    ----------
    descriptors : iterable of str, str or None
        Descriptor names (``"f0_median"``) and/or family names (``"pitch"``); None -> all.

    Returns
    -------
    list of str

    Raises
    ------
    ParameterError
        An unknown name (the message lists the valid descriptor and family names).
    """
    if descriptors is None:
        return list(REGISTRY)
    if isinstance(descriptors, str):
        descriptors = [descriptors]
    wanted: set[str] = set()
    for name in descriptors:
        if name in REGISTRY:
            wanted.add(name)
        elif name in FAMILIES:
            wanted.update(n for n, d in REGISTRY.items() if d.family == name)
        else:
            raise ParameterError(f"descriptors: unknown name {name!r}; valid families {list(FAMILIES)}, valid "
                                 f"descriptors {list(REGISTRY)}")
    if not wanted:
        raise ParameterError("descriptors is empty: name at least one descriptor or family, or pass None for all")
    return [n for n in REGISTRY if n in wanted]
