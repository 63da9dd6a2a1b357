"""Layer profiles: score against depth, one panel per descriptor, one line per pretraining domain."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from ..errors import ParameterError
from .style import DOMAIN_ORDER, MIN_FONTSIZE, domain_color, domain_label, panel_grid, styled
from .tables import RunTables, descriptor_order, headline_scores, layer_names

__all__ = ["NAME", "TITLE", "layer_profiles", "domain_profile", "profile_caption", "caption", "from_run"]

NAME = "layer_profiles"
TITLE = "Layer profiles by pretraining domain"


def domain_profile(scores: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Mean score per (pretraining domain, feature, layer) with a confidence interval.

    With several seeds (models) per domain the interval is the Student-t interval of the mean
    over seeds (the seed is the unit); with one model it is the model's own interval
    (``ci_low``/``ci_high`` of probes.parquet, e.g. a bootstrap over clips), NaN when absent.

    Parameters
    ----------
    scores : pd.DataFrame
        One row per (model, layer, feature): ``model``, ``pretrain_domain``, ``layer_index``,
        ``feature``, ``value``, and optionally ``ci_low``, ``ci_high``.
    confidence : float, keyword-only
        Coverage of the interval, in (0, 1).

    Returns
    -------
    pd.DataFrame
        Columns ``pretrain_domain``, ``feature``, ``layer_index``, ``mean``, ``ci_low``,
        ``ci_high``, ``n_models``, ``interval`` (``seeds (t)``, ``model`` or ``none``).
    """
    if not 0 < confidence < 1:
        raise ParameterError(f"confidence must be in (0, 1), got {confidence!r}")
    values = scores["value"].to_numpy(dtype=float)
    has_ci = {"ci_low", "ci_high"} <= set(scores)
    frame = pd.DataFrame({"pretrain_domain": scores["pretrain_domain"], "feature": scores["feature"],
                          "layer_index": scores["layer_index"], "model": scores["model"],
                          "value": np.where(np.isfinite(values), values, np.nan),
                          "ci_low": scores["ci_low"] if has_ci else np.nan,
                          "ci_high": scores["ci_high"] if has_ci else np.nan})
    frame["ci_given"] = frame["ci_low"].notna() & frame["ci_high"].notna()
    summary = frame.groupby(["pretrain_domain", "feature", "layer_index"], sort=True).agg(
        mean=("value", "mean"), sd=("value", "std"), n=("value", "count"), n_models=("model", "nunique"),
        model_low=("ci_low", "first"), model_high=("ci_high", "first"), ci_given=("ci_given", "all")).reset_index()
    n, mean = summary["n"].to_numpy(), summary["mean"].to_numpy(dtype=float)
    seeds = n >= 2
    sem = np.where(seeds, summary["sd"].to_numpy(dtype=float) / np.sqrt(np.maximum(n, 1)), np.nan)
    # equal seeds: a zero-width interval (scipy's t.interval needs scale > 0)
    df = np.maximum(n - 1, 1)
    low = np.where(sem > 0, mean + stats.t.ppf((1 - confidence) / 2, df) * sem, mean)
    high = np.where(sem > 0, mean + stats.t.ppf((1 + confidence) / 2, df) * sem, mean)
    model = (n == 1) & summary["ci_given"].to_numpy(dtype=bool) & has_ci
    summary["ci_low"] = np.where(seeds, low, np.where(model, summary["model_low"], np.nan))
    summary["ci_high"] = np.where(seeds, high, np.where(model, summary["model_high"], np.nan))
    summary["interval"] = np.where(seeds, "seeds (t)", np.where(model, "model", "none"))
    summary["layer_index"] = summary["layer_index"].astype(int)
    return summary[["pretrain_domain", "feature", "layer_index", "mean", "ci_low", "ci_high", "n_models",
                    "interval"]]


@styled
def layer_profiles(scores: pd.DataFrame, *, metric_label: str = "pooled out-of-fold $R^2$",
                   confidence: float = 0.95, order: Sequence[str] | None = None, ncols: int = 5,
                   title: str | None = None) -> Figure:
    """Score against layer for each descriptor, one line (with its interval) per pretraining domain.

    The random-weight control (domain ``none``) is the dashed grey line; layer 0, the log-mel
    input, is the first point of every line (the same for every model). The shaded band around
    a line is its confidence interval, and nothing else is shaded. Layers are evenly spaced in
    forward order (their names on the axis), whatever their ``layer_index``.

    Parameters
    ----------
    scores : pd.DataFrame
        As for :func:`domain_profile`.
    metric_label : str, keyword-only
        y-axis label.
    confidence : float, keyword-only
        Coverage of the shaded intervals.
    order : sequence of str, optional, keyword-only
        Descriptor order; order of appearance by default.
    ncols : int, keyword-only
        Panels per row (fewer when the figure would be wider than the report).
    title : str, optional, keyword-only
        Figure title; :data:`TITLE` by default.
    """
    if scores.empty:
        raise ParameterError("scores must have at least one row, got an empty table")
    profile = domain_profile(scores, confidence=confidence)
    features = descriptor_order(scores["feature"], order)
    names = layer_names(scores)
    position = {index: i for i, index in enumerate(sorted(names))}  # layers evenly spaced, named
    profile["x"] = profile["layer_index"].map(position)
    domains = [d for d in DOMAIN_ORDER if d in set(profile["pretrain_domain"])]
    domains += sorted(set(profile["pretrain_domain"]) - set(domains))
    n_models = scores.groupby("pretrain_domain")["model"].nunique()
    many = len(features) > 12
    fig, axes = panel_grid(len(features), ncols=ncols, panel_width=2.4 if many else 3.0,
                           panel_height=2.0 if many else 2.5, extra_height=0.8)
    # One scale for every panel, set on each rather than shared: 60 shared axes cost ~8 s of sibling bookkeeping.
    ylim = _shared_ylim(profile["mean"].to_numpy(dtype=float))
    # rows of each line, as positions into plain arrays (indexing a DataFrame per line costs ~0.4 s at 60 panels)
    lines = profile.groupby(["pretrain_domain", "feature"], sort=False).indices
    x, mean, low, high = (profile[c].to_numpy(dtype=float) for c in ("x", "mean", "ci_low", "ci_high"))
    for ax, feature in zip(axes, features):
        for domain in domains:
            rows = lines.get((domain, feature))
            if rows is None:
                continue
            control = domain == "none"
            color = domain_color(domain)
            ax.fill_between(x[rows], low[rows], high[rows], color=color, alpha=0.18, lw=0)
            ax.plot(x[rows], mean[rows], color=color, marker="o", ms=3.0, lw=1.4,
                    ls="--" if control else "-", label=f"{domain_label(domain)} (n={n_models[domain]})")
        ax.axhline(0.0, color="0.6", lw=0.6, zorder=0)
        ax.set_title(feature, fontsize=9 if many else 10, y=1.0)  # fixed height: no per-draw search (~0.5 s)
        ax.set_xticks(range(len(names)), [names[k] for k in sorted(names)], rotation=45, ha="right",
                      rotation_mode="anchor", fontsize=MIN_FONTSIZE if many else 8)
        ax.set_xlim(-0.5, len(names) - 0.5)
        if ylim is not None:
            ax.set_ylim(*ylim)
    fig.supxlabel("layer (first point: the log-mel input, the same for every model)")
    fig.supylabel(metric_label)
    handles, labels = axes[0].get_legend_handles_labels()
    # the legend's title is the figure's title: a suptitle and an outside legend would overlap
    legend = fig.legend(handles, labels, loc="outside upper center", ncols=len(labels), frameon=False,
                        title=f"{title or TITLE}\npretraining domain (n = models); shaded band: {confidence:.0%} CI",
                        title_fontsize=10)
    legend.get_title().set_multialignment("center")
    return fig


def _shared_ylim(means: np.ndarray) -> tuple[float, float] | None:
    """Return the y limits of every profile panel: the range of the finite ``means`` and 0, padded by 8%.

    Clipped to [-1, 1.05] unless a mean lies below -1; None when no mean is finite. The scale follows the means, so
    the intervals of 2-3 seeds may run off it.
    """
    means = means[np.isfinite(means)]
    if not means.size:
        return None
    low, high = min(0.0, means.min()), max(0.0, means.max())
    pad = 0.08 * (high - low or 1.0)
    bottom = low - pad if low < -1.0 else max(low - pad, -1.0)
    return float(bottom), float(min(high + pad, 1.05))


def profile_caption(tables: RunTables, *, metric: str, score: str) -> str:
    """Caption of a layer-profile figure of ridge ``metric`` (described as ``score``) in this run."""
    scores = headline_scores(tables.require("probes"), metric=metric)
    n_models = scores.groupby("pretrain_domain")["model"].nunique()
    several = bool((n_models > 1).any())
    return (f"One panel per descriptor: the {score} of a ridge probe (y) at each layer (x, input on the left, "
            "layers in forward order), one line per pretraining domain: the mean over its models (n in the "
            "legend); the dashed grey line is the random-weight control (pretrain_domain 'none'). The shaded "
            "band around a line is its 95% confidence interval"
            + (": a Student-t interval over the domain's seeds where it has several models (with 2-3 seeds it "
               "is wide and may run off the axis, which follows the means)" if several else
               ": the model's own interval where it has one, none when absent")
            + ". R^2 below 0 (thin line) means worse than predicting the descriptor's mean. Values: "
              f"probes.parquet, probe 'ridge', metric '{metric}'.")


def caption(tables: RunTables) -> str:
    """Return what the pooled layer profiles show and how to read them."""
    return profile_caption(tables, metric="r2_pooled",
                           score="pooled out-of-fold R^2 (all clips of all clip domains scored together, so "
                                 "differences between clip domains count; see the within-domain profiles)")


def from_run(tables: RunTables) -> Figure:
    """Return the layer profiles of ridge ``r2_pooled`` of a run."""
    return layer_profiles(headline_scores(tables.require("probes")), order=tables.descriptor_names())
