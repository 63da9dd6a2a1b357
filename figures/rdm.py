"""RDM panels.

Representational dissimilarity matrices of a few layers and descriptors, with the clips sorted by domain so that domain
structure shows as blocks.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.spatial.distance import squareform
from scipy.stats import rankdata

from ..errors import ParameterError
from ..probes.rdm import descriptor_rdm as condensed_descriptor_rdm
from ..probes.rdm import layer_rdm
from .style import CLIP_DOMAIN_COLORS, panel_grid, styled
from .tables import MissingInput, RunTables, descriptor_columns

__all__ = ["NAME", "TITLE", "caption", "select_clips", "correlation_rdm", "descriptor_rdm", "rank_percentiles",
           "rdm_panels", "from_run"]

NAME = "rdm_panels"
TITLE = "Representational dissimilarity matrices"


def select_clips(clips: pd.DataFrame, *, n_per_domain: int = 15, exclude: Sequence[str] = ()) -> pd.DataFrame:
    """Return an evenly spaced subset of clips of each domain, sorted by domain.

    Parameters
    ----------
    clips : pd.DataFrame
        clips.parquet (``clip_id``, ``domain``), in activation row order.
    n_per_domain : int, keyword-only
        Clips kept per domain (all when a domain has fewer).
    exclude : sequence of str, keyword-only
        Clip ids to leave out (failed clips).

    Returns
    -------
    pd.DataFrame
        The kept rows with a ``row`` column (their position in ``clips``), domains in order of
        first appearance, clips within a domain in their original order.
    """
    if n_per_domain < 2:
        raise ParameterError(f"n_per_domain must be at least 2, got {n_per_domain!r}")
    table = clips.reset_index(drop=True).assign(row=np.arange(len(clips)))
    table = table[~table["clip_id"].astype(str).isin(set(map(str, exclude)))]
    kept = []
    for _, group in table.groupby("domain", sort=False):
        picks = np.unique(np.linspace(0, len(group) - 1, min(n_per_domain, len(group))).round().astype(int))
        kept.append(group.iloc[picks])
    if not kept:
        raise ParameterError("clips must hold at least one usable clip, got none")
    return pd.concat(kept, ignore_index=True)


def correlation_rdm(activations: np.ndarray) -> np.ndarray:
    """Correlation-distance RDM (1 - Pearson r between clips' activation patterns), square.

    The square form of the RSA probe's :func:`~audioprobe.probes.rdm.layer_rdm`.

    Parameters
    ----------
    activations : ndarray, shape (n_clips, n_units)

    Returns
    -------
    ndarray, shape (n_clips, n_clips)
        Symmetric, zero diagonal; NaN for a clip whose pattern is constant.
    """
    activations = np.asarray(activations, dtype=float)
    if activations.ndim != 2 or activations.shape[0] < 2:
        raise ParameterError(f"activations must have shape (n_clips >= 2, n_units), got {activations.shape}")
    return squareform(layer_rdm(activations, metric="correlation"), checks=False)


def descriptor_rdm(values: np.ndarray) -> np.ndarray:
    """Absolute-difference RDM of one descriptor, square.

    The RSA probe's :func:`~audioprobe.probes.rdm.descriptor_rdm`.

    Parameters
    ----------
    values : ndarray, shape (n_clips,)

    Returns
    -------
    ndarray, shape (n_clips, n_clips)
        ``|y_i - y_j|`` (descriptor units); NaN in the row, column and diagonal entry of a NaN value.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise ParameterError(f"values must be one-dimensional, got shape {values.shape}")
    square = squareform(condensed_descriptor_rdm(values), checks=False)
    np.fill_diagonal(square, np.where(np.isnan(values), np.nan, 0.0))
    return square


def rank_percentiles(rdm: np.ndarray) -> np.ndarray:
    """Return the off-diagonal entries of an RDM replaced by their percentile rank (0-100).

    NaN stays NaN, the diagonal is 0 (NaN for a clip whose own entry is NaN). Puts RDMs of different units on one colour
    scale.
    """
    rdm = np.asarray(rdm, dtype=float)
    upper = np.triu_indices_from(rdm, k=1)
    values = rdm[upper]
    finite = np.isfinite(values)
    ranks = np.full(values.shape, np.nan)
    if finite.sum() > 1:
        ranks[finite] = (rankdata(values[finite]) - 1) / (finite.sum() - 1) * 100.0
    out = np.where(np.isnan(np.diag(rdm))[:, None] | np.isnan(np.diag(rdm))[None, :], np.nan, 0.0)
    out[upper] = ranks
    out.T[upper] = ranks
    return out


@styled
def rdm_panels(rdms: Mapping[str, np.ndarray], domains: Sequence[str], *, ncols: int = 4,
               subtitle: str = "") -> Figure:
    """One panel per RDM, shown as percentile ranks, with the clip-domain blocks outlined.

    Parameters
    ----------
    rdms : mapping of str to ndarray, shape (n_clips, n_clips)
        Panel title -> RDM; all over the same clips, in the same order.
    domains : sequence of str, length n_clips
        Domain of each clip (clips of a domain contiguous).
    ncols : int, keyword-only
        Panels per row.
    subtitle : str, keyword-only
        Second title line (e.g. the model and how clips were chosen).
    """
    if not rdms:
        raise ParameterError("rdms must hold at least one RDM, got none")
    domains = [str(d) for d in domains]
    n = len(domains)
    for title, rdm in rdms.items():
        if np.shape(rdm) != (n, n):
            raise ParameterError(f"RDM {title!r} must have shape ({n}, {n}) to match domains, "
                                 f"got {np.shape(rdm)}")
    starts = [0] + [i for i in range(1, n) if domains[i] != domains[i - 1]]
    bounds = list(zip(starts, starts[1:] + [n]))
    fig, axes = panel_grid(len(rdms), ncols=ncols, panel_width=2.6, panel_height=2.6, extra_width=0.9,
                           extra_height=0.6)
    image = None
    for ax, (title, rdm) in zip(axes, rdms.items()):
        image = ax.imshow(rank_percentiles(rdm), cmap="magma", vmin=0, vmax=100, interpolation="nearest")
        for start, stop in bounds:
            ax.add_patch(_block(start, stop, CLIP_DOMAIN_COLORS.get(domains[start], "0.3")))
        centres = [(start + stop - 1) / 2 for start, stop in bounds]
        labels = [domains[start] for start, _ in bounds]
        ax.set_xticks(centres, labels, fontsize=8)
        ax.set_yticks(centres, labels, fontsize=8, rotation=90, va="center")
        ax.tick_params(length=0)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("clip")
        ax.set_ylabel("clip")
        for side in ("top", "right"):
            ax.spines[side].set_visible(True)
    colorbar = fig.colorbar(image, ax=axes, shrink=0.8, aspect=30)
    colorbar.set_label("dissimilarity (percentile)")
    fig.suptitle(TITLE + (f"\n{subtitle}" if subtitle else ""))
    return fig


def _block(start: int, stop: int, color: str):
    from matplotlib.patches import Rectangle

    return Rectangle((start - 0.5, start - 0.5), stop - start, stop - start, fill=False, edgecolor=color, lw=1.5)


def _spread(items: Sequence, k: int) -> list:
    """``k`` evenly spaced items, always including the first and the last."""
    if len(items) <= k:
        return list(items)
    return [items[i] for i in np.unique(np.linspace(0, len(items) - 1, k).round().astype(int))]


def _one_per_family(names: list[str], meta: pd.DataFrame | None) -> list[str]:
    """Return the first descriptor of each family (features_meta.csv order), then the others."""
    if meta is None or "family" not in meta:
        return names
    family = dict(zip(meta["name"].astype(str), meta["family"].astype(str)))
    seen: set[str] = set()
    first = []
    for name in names:
        if family.get(name, name) not in seen:
            seen.add(family.get(name, name))
            first.append(name)
    return first + [n for n in names if n not in first]


def _chosen_model(tables: RunTables) -> str:
    """Return the first trained model (the control when no model is trained)."""
    if not tables.models:
        raise MissingInput("activations/ is absent")
    trained = [m for m, info in tables.models.items() if info.get("pretrain_domain", "none") != "none"]
    return (trained or list(tables.models))[0]


def caption(tables: RunTables) -> str:
    """Return what the RDM panels show and how to read them."""
    model = _chosen_model(tables)
    return (f"Representational dissimilarity matrices of model {model}: each panel compares every pair of clips "
            "(rows and columns, the same clips in the same order, sorted by clip domain; the outlined squares "
            "are the clip domains). A layer panel ('layer <name>', the module name used in every figure) holds "
            "the correlation distance (1 - Pearson r) between the clips' pooled activations; a descriptor panel "
            "the absolute difference of the descriptor (on its probe scale: log for skewed descriptors). "
            "Colours are percentile ranks within each panel (dark: similar, bright: dissimilar), so panels of "
            "different units share one scale; white: undefined (e.g. F0 of a clip without voicing). Bright "
            "off-diagonal blocks with dark diagonal squares mean the layer separates the clip domains. The "
            "probes' RSA scores (report tables) use every clip, not only these.")


def from_run(tables: RunTables, *, n_layers: int = 4, n_descriptors: int = 3, n_per_domain: int = 15) -> Figure:
    """Draw the RDMs of ``n_layers`` layers and ``n_descriptors`` descriptors.

    Layers from input to last of the first trained model, descriptors from different families, over up to
    ``n_per_domain`` clips per domain.
    """
    model = _chosen_model(tables)
    clips = tables.require("clips")
    features = tables.get("features")
    layers = tables.layers(model)
    chosen = _spread(list(layers["layer"]), n_layers)
    failures = tables.get("failures")
    failed = set(failures["clip_id"].dropna().astype(str)) if failures is not None else set()
    if features is not None:
        failed |= set(clips["clip_id"].astype(str)) - set(features["clip_id"].astype(str))
    subset = select_clips(clips, n_per_domain=n_per_domain, exclude=sorted(failed))
    rdms = {}
    for layer in chosen:
        rdms[f"layer {layer}"] = correlation_rdm(tables.activations(model, layer,
                                                                              rows=subset["row"].to_numpy()))
    if features is not None:
        meta = tables.get("features_meta")
        scale = dict(zip(meta["name"], meta["probe_scale"])) if meta is not None else {}
        values = features.set_index(features["clip_id"].astype(str)).reindex(subset["clip_id"].astype(str))
        for name in _one_per_family(descriptor_columns(features), meta)[:n_descriptors]:
            column = values[name].to_numpy(dtype=float)
            if scale.get(name) == "log":
                with np.errstate(invalid="ignore", divide="ignore"):
                    column = np.log(column)
                name = f"log {name}"
            rdms[f"{name} (descriptor)"] = descriptor_rdm(column)
    subtitle = (f"model {model}; {len(subset)} clips (up to {n_per_domain} per domain), sorted by domain; "
                "white: undefined")
    return rdm_panels(rdms, list(subset["domain"]), subtitle=subtitle)
