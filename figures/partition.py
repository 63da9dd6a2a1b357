"""Unique vs shared variance per layer (the ``partition`` rows of probes.parquet).

Variance partitioning gives, per layer, the cross-validated R^2 of the full descriptor set
(metric containing ``full``) and each descriptor's (or descriptor family's) unique R^2
(metric containing ``unique``: full model minus the model without it; the R^2 without it,
a metric containing ``without``, adds nothing and is not drawn). What the descriptors
explain together but not alone is the shared part: full minus the sum of the unique parts,
unless the table stores it (a metric containing ``shared``). Metrics the figure does not
recognise are drawn as plain lines, so a new partition metric still shows.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import ParameterError
from .style import DOMAIN_ORDER, domain_label, panel_grid, styled
from .tables import MissingInput, RunTables, layer_names

__all__ = ["NAME", "TITLE", "caption", "partition_summary", "partition_plot", "from_run"]

NAME = "variance_partition"
TITLE = "Unique and shared variance explained by the descriptors"


def _kind(metric: str) -> str:
    metric = metric.lower()
    for kind in ("unique", "shared", "full", "without"):
        if kind in metric:
            return kind
    return "other"


def partition_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean over models of each domain of the partition metrics, per layer.

    Parameters
    ----------
    rows : pd.DataFrame
        ``partition`` rows of probes.parquet over all folds: ``model``, ``pretrain_domain``,
        ``layer``, ``layer_index``, ``feature``, ``metric``, ``value``.

    Returns
    -------
    pd.DataFrame
        Columns ``pretrain_domain``, ``layer_index``, ``part`` (a descriptor or family name for
        unique parts, ``shared``, ``full``, or ``"<metric>: <feature>"`` for an unrecognised
        metric), ``kind`` (``unique``, ``shared``, ``full``, ``other``), ``value``, ``n_models``.
        When not stored, the shared part is ``full - sum(max(unique, 0))``: a negative unique
        R^2 (leaving the set out improves cross-validated prediction) counts as no unique
        variance, so unique and shared parts stack up to the full R^2.
    """
    if rows.empty:
        raise ParameterError("rows must have at least one row, got an empty table")
    rows = rows.assign(kind=rows["metric"].astype(str).map(_kind))
    rows = rows[rows["kind"] != "without"]  # R^2 without a set = full - unique: nothing new to draw
    if rows.empty:
        raise ParameterError("rows must hold partition metrics besides r2_without, got none")
    other = rows["metric"].astype(str) + ": " + rows["feature"].astype(str)
    rows = rows.assign(part=np.where(rows["kind"] == "unique", rows["feature"].astype(str),
                                     np.where(rows["kind"] == "other", other, rows["kind"])))
    per_model = rows.groupby(["model", "pretrain_domain", "layer_index", "kind", "part"], as_index=False,
                             sort=True)["value"].mean()
    kinds = set(per_model["kind"])
    if "shared" not in kinds and {"full", "unique"} <= kinds:
        full = per_model[per_model["kind"] == "full"].set_index(["model", "pretrain_domain", "layer_index"])
        unique = per_model[per_model["kind"] == "unique"].groupby(["model", "pretrain_domain",
                                                                    "layer_index"])["value"].apply(
            lambda v: v.clip(lower=0.0).sum())
        shared = (full["value"] - unique).dropna().rename("value").reset_index()
        per_model = pd.concat([per_model, shared.assign(kind="shared", part="shared")], ignore_index=True)
    return (per_model.groupby(["pretrain_domain", "layer_index", "kind", "part"], as_index=False, sort=True)
            .agg(value=("value", "mean"), n_models=("model", "nunique")))


@styled
def partition_plot(rows: pd.DataFrame, *, ncols: int = 4) -> Figure:
    """Stacked bars per layer.

    Each descriptor's (or family's) unique R^2 and the shared R^2, with the full-set R^2 as a black marker; one panel
    per pretraining domain (mean over its models). Layers are evenly spaced in forward order.

    Parameters
    ----------
    rows : pd.DataFrame
        As for :func:`partition_summary`.
    ncols : int, keyword-only
        Panels per row.
    """
    summary = partition_summary(rows)
    names = layer_names(rows)
    position = {index: i for i, index in enumerate(sorted(names))}  # layers evenly spaced, named
    summary["x"] = summary["layer_index"].map(position)
    present = set(summary["pretrain_domain"])
    domains = [d for d in DOMAIN_ORDER if d in present] + sorted(present - set(DOMAIN_ORDER))
    parts = list(dict.fromkeys(summary.loc[summary["kind"] == "unique", "part"]))
    colors = dict(zip(parts, _qualitative(len(parts))))
    colors["shared"] = "0.75"
    fig, axes = panel_grid(len(domains), ncols=ncols, panel_width=3.2, panel_height=2.6, extra_height=1.0,
                           sharey=True)
    for ax, domain in zip(axes, domains):
        table = summary[summary["pretrain_domain"] == domain]
        bottom = pd.Series(0.0, index=range(len(names)))
        for part in parts + ["shared"]:
            values = table[table["part"] == part].set_index("x")["value"].reindex(bottom.index)
            if values.isna().all():
                continue
            heights = values.fillna(0.0).clip(lower=0.0)
            ax.bar(bottom.index, heights, bottom=bottom, color=colors[part], width=0.75, edgecolor="white",
                   lw=0.4, label=f"unique: {part}" if part != "shared" else "shared")
            bottom = bottom + heights
        full = table[table["kind"] == "full"].set_index("x")["value"].reindex(bottom.index)
        if full.notna().any():
            ax.plot(full.index, full, "k_", ms=14, mew=2, label="full descriptor set")
        for part, line in table[table["kind"] == "other"].groupby("part", sort=True):
            ax.plot(line["x"], line["value"], marker="o", ms=3, lw=1, label=part)
        n_models = int(table["n_models"].max())
        ax.set_title(f"{domain_label(domain)}\n(mean of {n_models} model{'s' if n_models > 1 else ''})")
        ax.axhline(0.0, color="0.4", lw=0.6)
        ax.set_xticks(range(len(names)), [names[i] for i in sorted(names)], rotation=45, ha="right",
                      rotation_mode="anchor")
        ax.set_xlabel("layer")
        ax.set_ylabel("cross-validated $R^2$")
        ax.yaxis.set_tick_params(labelleft=True)
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=min(3, len(handles)),
               frameon=False)
    fig.suptitle(f"{TITLE}\n(negative unique $R^2$ drawn as 0; shared = full minus the unique parts)",
                 fontsize=10)
    return fig


def _qualitative(n: int) -> list:
    import seaborn as sns

    return sns.color_palette("colorblind", n_colors=max(n, 1))[:n]


def caption(tables: RunTables) -> str:
    """Return what the variance-partition figure shows and how to read it."""
    config = tables.info.get("stages", {}).get("probe", {}).get("config", {})
    by = config.get("partition_by", "not recorded")
    k = config.get("n_components", "not recorded")
    return ("One panel per pretraining domain (mean over its models). For each layer (x), the black tick is the "
            f"cross-validated R^2 with which the whole descriptor set predicts the layer's top {k} principal "
            "components (pooled over clip domains); the coloured stack splits it into the part each descriptor "
            f"{by} explains alone (unique: the full set's R^2 minus the R^2 without it; negative values drawn "
            "as 0) and the part the descriptors share (grey: full minus the unique parts). Values: "
            "probes.parquet, probe 'partition'.")


def from_run(tables: RunTables) -> Figure:
    """Return the variance-partition figure of a run's ``partition`` rows over all folds."""
    probes = tables.require("probes")
    rows = probes[probes["probe"] == "partition"]
    if "fold" in rows:
        rows = rows[rows["fold"].isna()]
    if "eval_domain" in rows:
        rows = rows[rows["eval_domain"].fillna("all") == "all"]
    if rows.empty:
        raise MissingInput("probes.parquet has no partition rows over all folds")
    return partition_plot(rows)
