"""Layer profiles: score against depth, one panel per descriptor, one line per pretraining domain."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from ..errors import ParameterError
from .style import DOMAIN_ORDER, domain_color, domain_label, panel_grid, styled
from .tables import RunTables, headline_scores, layer_names

__all__ = ["NAME", "layer_profiles", "domain_profile", "from_run"]

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
    rows = []
    for (domain, feature, index), group in scores.groupby(["pretrain_domain", "feature", "layer_index"],
                                                         sort=True):
        values = group["value"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        n = values.size
        mean = float(values.mean()) if n else np.nan
        if n >= 2:
            half = stats.t.ppf(0.5 + confidence / 2, n - 1) * values.std(ddof=1) / np.sqrt(n)
            low, high, kind = mean - half, mean + half, "seeds (t)"
        elif n == 1 and {"ci_low", "ci_high"} <= set(group) and group[["ci_low", "ci_high"]].notna().to_numpy().all():
            low, high, kind = float(group["ci_low"].iloc[0]), float(group["ci_high"].iloc[0]), "model"
        else:
            low, high, kind = np.nan, np.nan, "none"
        rows.append({"pretrain_domain": domain, "feature": feature, "layer_index": int(index), "mean": mean,
                     "ci_low": low, "ci_high": high, "n_models": group["model"].nunique(), "interval": kind})
    return pd.DataFrame(rows)


@styled
def layer_profiles(scores: pd.DataFrame, *, metric_label: str = "pooled out-of-fold $R^2$",
                   confidence: float = 0.95, ncols: int = 4) -> Figure:
    """Score against layer for each descriptor, one line (with its interval) per pretraining domain.

    The random-weight control (domain ``none``) is the dashed grey line; layer 0, the log-mel
    input, is the first point of every line and is shaded as the input.

    Parameters
    ----------
    scores : pd.DataFrame
        As for :func:`domain_profile`.
    metric_label : str, keyword-only
        y-axis label.
    confidence : float, keyword-only
        Coverage of the shaded intervals.
    ncols : int, keyword-only
        Panels per row.
    """
    if scores.empty:
        raise ParameterError("scores must have at least one row, got an empty table")
    profile = domain_profile(scores, confidence=confidence)
    features = list(dict.fromkeys(scores["feature"].astype(str)))
    names = layer_names(scores)
    domains = [d for d in DOMAIN_ORDER if d in set(profile["pretrain_domain"])]
    domains += sorted(set(profile["pretrain_domain"]) - set(domains))
    n_models = scores.groupby("pretrain_domain")["model"].nunique()
    fig, axes = panel_grid(len(features), ncols=ncols, panel_width=3.0, panel_height=2.5, extra_height=0.8,
                           sharey=True)
    for ax, feature in zip(axes, features):
        if 0 in names:
            ax.axvspan(-0.5, 0.5, color="0.93", zorder=0, lw=0)
        for domain in domains:
            line = profile[(profile["pretrain_domain"] == domain) & (profile["feature"] == feature)]
            if line.empty:
                continue
            control = domain == "none"
            color = domain_color(domain)
            ax.fill_between(line["layer_index"], line["ci_low"], line["ci_high"], color=color, alpha=0.18, lw=0)
            ax.plot(line["layer_index"], line["mean"], color=color, marker="o", ms=3.5, lw=1.5,
                    ls="--" if control else "-", label=f"{domain_label(domain)} (n={n_models[domain]})")
        ax.axhline(0.0, color="0.6", lw=0.6, zorder=0)
        ax.set_title(feature)
        ax.set_xticks(sorted(names), [names[i] for i in sorted(names)], rotation=45, ha="right",
                      rotation_mode="anchor")
        ax.set_xlim(min(names) - 0.5, max(names) + 0.5)
        ax.set_xlabel("layer (0 = log-mel input)")
        ax.set_ylabel(metric_label)
        ax.yaxis.set_tick_params(labelleft=True)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False,
               title=f"pretraining domain (n = models); shaded: {confidence:.0%} CI")
    fig.suptitle(TITLE)
    return fig


def from_run(tables: RunTables) -> Figure:
    """The layer profiles of ridge ``r2_pooled`` of a run."""
    return layer_profiles(headline_scores(tables.require("probes")))
