"""CKA matrix across layers and models (the pairwise ``cka`` rows of probes.parquet)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import ParameterError
from .style import MIN_FONTSIZE, domain_color, panel_grid, styled
from .tables import MissingInput, RunTables, model_order

__all__ = ["NAME", "TITLE", "caption", "cka_matrix", "cka_plot", "from_run"]

NAME = "cka_matrix"
TITLE = "CKA across layers and models"


def cka_matrix(pairs: pd.DataFrame) -> pd.DataFrame:
    """Square CKA matrix over (model, layer) from pairwise rows, mirrored when only one triangle is stored.

    Parameters
    ----------
    pairs : pd.DataFrame
        Rows of one metric with ``model``, ``layer``, ``layer_index``, ``model_b``,
        ``layer_b``, ``value`` (and ``pretrain_domain``, ``seed`` for the model order).

    Returns
    -------
    pd.DataFrame
        Index and columns are a MultiIndex (model, layer), models ordered by pretraining
        domain and seed, layers by ``layer_index``; the diagonal is 1 (CKA of a layer with itself,
        linear or debiased) unless stored; NaN where a pair was not computed.
    """
    if pairs.empty:
        raise ParameterError("pairs must have at least one row, got an empty table")
    pairs = pairs.astype({"model": str, "layer": str, "model_b": str, "layer_b": str})
    index_of = dict(zip(zip(pairs["model"], pairs["layer"]), pairs["layer_index"]))
    models = model_order(pairs)
    models += sorted(set(pairs["model_b"]) - set(models))
    keys = set(zip(pairs["model"], pairs["layer"])) | set(zip(pairs["model_b"], pairs["layer_b"]))
    rank = {m: i for i, m in enumerate(models)}
    order = sorted(keys, key=lambda k: (rank[k[0]], index_of.get(k, np.inf), k[1]))
    position = {k: i for i, k in enumerate(order)}
    matrix = np.full((len(order), len(order)), np.nan)
    for model, layer, model_b, layer_b, value in pairs[["model", "layer", "model_b", "layer_b",
                                                        "value"]].itertuples(index=False, name=None):
        i, j = position[(model, layer)], position[(model_b, layer_b)]
        matrix[i, j] = value
        if np.isnan(matrix[j, i]):
            matrix[j, i] = value
    diagonal = np.diag(matrix).copy()
    np.fill_diagonal(matrix, np.where(np.isnan(diagonal), 1.0, diagonal))  # CKA of a layer with itself is 1
    index = pd.MultiIndex.from_tuples(order, names=["model", "layer"])
    return pd.DataFrame(matrix, index=index, columns=index)


@styled
def cka_plot(pairs: pd.DataFrame, *, ncols: int = 2) -> Figure:
    """CKA between every pair of (model, layer), one panel per CKA metric.

    Models form blocks (outlined, their name on the axis in their domain's colour); within a
    block layers run from the input down/right to the last layer.

    Parameters
    ----------
    pairs : pd.DataFrame
        ``cka`` rows of probes.parquet with ``model_b``/``layer_b`` set, any number of metrics.
    ncols : int, keyword-only
        Panels per row.
    """
    if pairs.empty:
        raise ParameterError("pairs must have at least one row, got an empty table")
    metrics = list(dict.fromkeys(pairs["metric"].astype(str)))
    domains = dict(zip(pairs["model"].astype(str), pairs["pretrain_domain"].astype(str)))
    matrices = [cka_matrix(pairs[pairs["metric"] == metric]) for metric in metrics]
    n = len(matrices[0])
    size = min(10.0, max(3.5, 0.16 * n))
    pitch = size * 72 / n  # points per row
    labelled = pitch >= 1.15 * MIN_FONTSIZE
    fontsize = min(8.0, pitch / 1.15)
    fig, axes = panel_grid(len(metrics), ncols=ncols, panel_width=size + 3.0, panel_height=size + 1.4,
                           extra_width=0.8, extra_height=0.4)
    image = None
    for ax, metric, matrix in zip(axes, metrics, matrices):
        image = ax.imshow(matrix.to_numpy(), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        models = matrix.index.get_level_values("model")
        layers = matrix.index.get_level_values("layer")
        starts = [0] + [i for i in range(1, len(models)) if models[i] != models[i - 1]]
        bounds = list(zip(starts, starts[1:] + [len(models)]))
        if labelled:  # every row named "model · layer", every column by its layer
            ax.set_yticks(range(n), [f"{m} · {layer}" for m, layer in matrix.index], fontsize=fontsize)
            ax.set_xticks(range(n), list(layers), rotation=90, fontsize=fontsize)
            for label, model in zip(ax.get_yticklabels(), models):
                label.set_color(domain_color(domains.get(model, "none")))
        else:  # too many rows to name: models at their block centres
            centres = [(a + b - 1) / 2 for a, b in bounds]
            ax.set_yticks(centres, [models[a] for a, _ in bounds], fontsize=MIN_FONTSIZE)
            ax.set_xticks(centres, [models[a] for a, _ in bounds], rotation=90, fontsize=MIN_FONTSIZE)
            for tick_labels in (ax.get_xticklabels(), ax.get_yticklabels()):
                for label in tick_labels:
                    label.set_color(domain_color(domains.get(label.get_text(), "none")))
        for start, _ in bounds[1:]:
            ax.axhline(start - 0.5, color="white", lw=1.2)
            ax.axvline(start - 0.5, color="white", lw=1.2)
        ax.set_title(metric)
        ax.set_xlabel("layer (blocks: models, in the order of the rows)" if labelled
                      else "model (layers input to last within each block)")
        ax.set_ylabel("model · layer" if labelled else "model (layers input to last within each block)")
    negative = bool((pairs["value"].to_numpy(dtype=float) < 0).any())  # debiased CKA can dip below 0
    colorbar = fig.colorbar(image, ax=axes, shrink=0.7, aspect=30, extend="min" if negative else "neither")
    colorbar.set_label("CKA")
    fig.suptitle(TITLE + " (label colour: pretraining domain)")
    return fig


def caption(tables: RunTables) -> str:
    """Return what the CKA matrix shows and how to read it."""
    return ("Centred kernel alignment between the pooled activations of every pair of (model, layer) over the "
            "run's clips: 1 = the same representation up to rotation and scale, 0 = unrelated. Rows and columns "
            "run model by model (white lines separate the models; row labels 'model · layer', coloured by "
            "pretraining domain; within a model, layers from the input to the last). Bright squares along the "
            "diagonal: layers of one model that resemble each other; bright off-diagonal blocks: models whose "
            "layers resemble each other. One panel per CKA estimator (debiased CKA can be below 0). Values: "
            "probes.parquet, probe 'cka' with model_b/layer_b.")


def from_run(tables: RunTables) -> Figure:
    """Return the CKA matrix of a run's pairwise ``cka`` rows."""
    probes = tables.require("probes")
    pairs = probes[(probes["probe"] == "cka") & probes["model_b"].notna() & probes["layer_b"].notna()]
    if pairs.empty:
        raise MissingInput("probes.parquet has no pairwise cka rows (model_b/layer_b)")
    return cka_plot(pairs)
