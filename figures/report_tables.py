"""The tables of the run report.

Per-layer results (best layer per descriptor, pooled vs within-domain R^2, scores relative to the
random-weight control, per-layer means per pretraining domain), cross-domain transfer, task read-out
and domain-comparison statistics, each computed from the run's result tables (``probes.parquet``,
``stats.parquet``) as a :class:`pandas.DataFrame`. :mod:`.run_report` lays them out as the page.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..contract import all_fold_scores
from .tables import descriptor_order, layer_names, model_order

__all__ = ["CONTROL_DOMAIN", "best_layers", "best_layer_overview", "domain_layer_table", "pooled_within_table",
           "pooled_within_overview", "control_relative", "control_overview", "transfer_table", "task_table",
           "contrast_counts", "largest_contrasts", "model_domains"]

#: The random-weight control's pretraining domain (model.json ``pretrain_domain``).
CONTROL_DOMAIN = "none"


def best_layers(scores: pd.DataFrame) -> pd.DataFrame:
    """Return the best layer of each model for each descriptor, and its gain over the log-mel input.

    Parameters
    ----------
    scores : pd.DataFrame
        One score per (model, layer, feature), e.g. ridge ``r2_pooled`` rows.

    Returns
    -------
    pd.DataFrame
        Columns ``model``, ``pretrain_domain``, ``seed``, ``feature``, ``best_layer``,
        ``layer_index``, ``value``, ``ci_low``, ``ci_high``, ``input_value`` (layer 0),
        ``gain_over_input``; models in domain order.
    """
    scores = scores.dropna(subset=["value"])
    best = scores.loc[scores.groupby(["model", "feature"], sort=False)["value"].idxmax()]
    best = best.rename(columns={"layer": "best_layer"})
    inputs = scores[scores["layer_index"] == 0].set_index(["model", "feature"])["value"].rename("input_value")
    best = best.join(inputs, on=["model", "feature"])
    best["gain_over_input"] = best["value"] - best["input_value"]
    rank = {m: i for i, m in enumerate(model_order(scores))}
    best = best.assign(_rank=best["model"].map(rank)).sort_values(["_rank", "feature"], kind="stable")
    columns = ["model", "pretrain_domain", "seed", "feature", "best_layer", "layer_index", "value", "ci_low",
               "ci_high", "input_value", "gain_over_input"]
    return best[[c for c in columns if c in best]].reset_index(drop=True)


def best_layer_overview(best: pd.DataFrame, *, order: list[str] | None = None) -> pd.DataFrame:
    """Return :func:`best_layers` as one row per descriptor and one column per model.

    Each cell ``"<layer>: <score> (<gain over the input>)"``.
    """
    cells = best.assign(cell=[f"{layer}: {value:.2f} ({gain:+.2f})" if pd.notna(gain) else f"{layer}: {value:.2f}"
                              for layer, value, gain in zip(best["best_layer"], best["value"],
                                                            best.get("gain_over_input", pd.Series(np.nan,
                                                                                                  best.index)))])
    table = cells.pivot(index="feature", columns="model", values="cell")
    table = table.reindex(index=descriptor_order(best["feature"], order),
                          columns=list(dict.fromkeys(best["model"])))
    table.columns.name = None
    return table.reset_index().rename(columns={"feature": "descriptor"})


def domain_layer_table(scores: pd.DataFrame, domain: str, *, order: list[str] | None = None) -> pd.DataFrame:
    """Mean score over the models of one pretraining domain.

    One row per descriptor, one column per layer (forward order).
    """
    rows = scores[scores["pretrain_domain"] == domain]
    names = layer_names(rows)
    table = rows.pivot_table(index="feature", columns="layer_index", values="value", aggfunc="mean")
    table = table.reindex(index=descriptor_order(rows["feature"], order), columns=sorted(names))
    table.columns = [names[i] for i in table.columns]
    return table.reset_index(names="descriptor")


def _domain_means(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean ``value`` over the models of each pretraining domain, per (domain, layer_index, feature)."""
    return scores.groupby(["pretrain_domain", "layer_index", "feature"], as_index=False)["value"].mean()


def pooled_within_table(probes: pd.DataFrame, domain: str, *, order: list[str] | None = None) -> pd.DataFrame:
    """At the best layer (by mean pooled R^2 over the domain's models) of each descriptor.

    Pooled R^2, within-domain R^2 and R^2 on each clip domain's clips, means over the models of ``domain``.

    Returns
    -------
    pd.DataFrame
        Columns ``descriptor``, ``best layer``, ``pooled R^2``, ``within-domain R^2`` (NaN when the
        run has no ``r2_within`` rows), one ``R^2 on <clip domain> clips`` per clip domain.
    """
    pooled = all_fold_scores(probes, probe="ridge", metric="r2_pooled")
    pooled = pooled[pooled["pretrain_domain"] == domain]
    names = layer_names(pooled)
    means = _domain_means(pooled).dropna(subset=["value"])
    best = means.loc[means.groupby("feature")["value"].idxmax()].set_index("feature")
    columns = {"within-domain R^2": all_fold_scores(probes, probe="ridge", metric="r2_within")}
    clip_domains = sorted(set(probes.loc[(probes["probe"] == "ridge") & (probes["metric"] == "r2_pooled"),
                                         "eval_domain"].dropna().astype(str)) - {"all"})
    for clip_domain in clip_domains:
        columns[f"R^2 on {clip_domain} clips"] = all_fold_scores(probes, probe="ridge", metric="r2_pooled",
                                                             eval_domain=clip_domain)
    table = pd.DataFrame({"best layer": best["layer_index"].map(names), "pooled R^2": best["value"]})
    for label, scores in columns.items():
        scores = _domain_means(scores[scores["pretrain_domain"] == domain]).set_index(["feature", "layer_index"])
        keys = list(zip(best.index, best["layer_index"]))
        table[label] = [scores["value"].get(key, np.nan) for key in keys]
    table = table.reindex(descriptor_order(table.index, order))
    return table.reset_index(names="descriptor")


def pooled_within_overview(probes: pd.DataFrame, domains: list[str], *, order: list[str] | None = None
                           ) -> pd.DataFrame:
    """Return :func:`pooled_within_table` of each pretraining domain, one row per descriptor, one column per domain.

    Each cell ``"<best layer>: <pooled> / <within>"`` (``n/a`` where no within-domain score).
    """
    columns = {}
    for domain in domains:
        table = pooled_within_table(probes, domain, order=order).set_index("descriptor")
        columns[domain] = [f"{layer}: {pooled:.2f} / " + ("n/a" if pd.isna(within) else f"{within:.2f}")
                           for layer, pooled, within in zip(table["best layer"], table["pooled R^2"],
                                                            table["within-domain R^2"])]
        columns[domain] = pd.Series(columns[domain], index=table.index)
    overview = pd.DataFrame(columns)
    overview = overview.reindex(descriptor_order(overview.index, order))
    return overview.reset_index(names="descriptor")


def control_relative(scores: pd.DataFrame) -> pd.DataFrame:
    """Each trained model's score minus the random-weight control's at the same layer and descriptor.

    Parameters
    ----------
    scores : pd.DataFrame
        One score per (model, layer, feature) with ``pretrain_domain``; the control has
        ``pretrain_domain`` ``"none"`` (model.json; ``control`` ``random-weights``).

    Returns
    -------
    pd.DataFrame
        The rows of trained models with ``value`` replaced by the difference (the control's mean
        when the run has several controls); empty when the run has no control.
    """
    control = scores[scores["pretrain_domain"] == CONTROL_DOMAIN]
    if control.empty:
        return scores.iloc[:0]
    reference = control.groupby(["layer_index", "feature"])["value"].mean().rename("control")
    trained = scores[scores["pretrain_domain"] != CONTROL_DOMAIN].join(reference, on=["layer_index", "feature"])
    return trained.assign(value=trained["value"] - trained["control"]).drop(columns="control")


def control_overview(relative: pd.DataFrame, *, order: list[str] | None = None) -> pd.DataFrame:
    """Return :func:`control_relative` as one row per descriptor and one column per trained pretraining domain.

    Each cell ``"<layer>: <difference>"`` at the layer of the largest mean difference over its models.
    """
    means = _domain_means(relative).dropna(subset=["value"])
    names = layer_names(relative)
    best = means.loc[means.groupby(["pretrain_domain", "feature"])["value"].idxmax()]
    best = best.assign(cell=[f"{names[i]}: {v:+.2f}" for i, v in zip(best["layer_index"], best["value"])])
    table = best.pivot(index="feature", columns="pretrain_domain", values="cell")
    domains = [d for d in model_domains(relative) if d in table.columns]
    table = table.reindex(index=descriptor_order(best["feature"], order), columns=domains)
    table.columns.name = None
    return table.reset_index().rename(columns={"feature": "descriptor"})


def model_domains(scores: pd.DataFrame) -> list[str]:
    """Pretraining domains of a table in model order (speech, non-speech, mixed, none)."""
    first = scores.drop_duplicates("model").set_index("model")
    return list(dict.fromkeys(first.loc[model_order(scores), "pretrain_domain"]))


def transfer_table(probes: pd.DataFrame, *, metric: str = "r2") -> pd.DataFrame:
    """Cross-domain transfer.

    Per pretraining domain and (train -> evaluation clip domain), the median over descriptors of the mean score over the
    domain's models, one column per layer.
    """
    rows = probes[(probes["probe"] == "transfer") & (probes["metric"] == metric)]
    if "fold" in rows:
        rows = rows[rows["fold"].isna()]
    if rows.empty:
        return pd.DataFrame()
    names = layer_names(rows)
    means = rows.groupby(["pretrain_domain", "train_domain", "eval_domain", "layer_index", "feature"],
                         as_index=False)["value"].mean()
    table = means.pivot_table(index=["pretrain_domain", "train_domain", "eval_domain"], columns="layer_index",
                              values="value", aggfunc="median")
    table.columns = [names[i] for i in table.columns]
    rank = {d: i for i, d in enumerate(model_domains(rows))}
    table = table.reset_index()
    table.insert(1, "clips", [f"{a} -> {b}" for a, b in zip(table["train_domain"], table["eval_domain"])])
    table = table.assign(_rank=table["pretrain_domain"].map(rank)).sort_values(
        ["_rank", "train_domain", "eval_domain"], kind="stable")
    return table.drop(columns=["_rank", "train_domain", "eval_domain"]).reset_index(drop=True)


def task_table(probes: pd.DataFrame, *, metric: str = "balanced_accuracy_pooled") -> pd.DataFrame:
    """Task read-out.

    Per pretraining domain and task, the mean pooled score over the domain's models, one column per layer, then the
    task's chance level and how many model x layer scores have a permutation p < 0.05.
    """
    rows = all_fold_scores(probes, probe="task", metric=metric)
    if rows.empty:
        return pd.DataFrame()
    names = layer_names(rows)
    table = rows.pivot_table(index=["pretrain_domain", "feature"], columns="layer_index", values="value",
                             aggfunc="mean")
    table.columns = [names[i] for i in table.columns]
    chance = all_fold_scores(probes, probe="task", metric="chance").groupby("feature")["value"].mean()
    significant = rows.assign(_p=rows["p_value"] < 0.05).groupby(["pretrain_domain", "feature"])["_p"]
    table = table.reset_index()
    table["chance"] = table["feature"].map(chance)
    counts = significant.sum().astype(int).astype(str) + " of " + significant.size().astype(str)
    table["p < 0.05"] = [counts.get((d, f), "") for d, f in zip(table["pretrain_domain"], table["feature"])]
    rank = {d: i for i, d in enumerate(model_domains(rows))}
    table = table.assign(_rank=table["pretrain_domain"].map(rank)).sort_values(["_rank", "feature"], kind="stable")
    return table.drop(columns="_rank").rename(columns={"feature": "task"}).reset_index(drop=True)


def contrast_counts(stats: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Per contrast: cells, cells by status, significant cells (``p_fdr <= alpha``), median mde.

    Rows over all layers (``layer`` ``all``) are counted separately from layer cells.
    """
    status = stats["status"] if "status" in stats else pd.Series(
        np.where(stats["p_value"].notna(), "tested", "not_tested"), index=stats.index)
    table = stats.assign(_status=status, _scope=np.where(stats["layer_index"].isna(), "all layers",
                                                         "layer x descriptor"),
                         _significant=stats["p_fdr"] <= alpha)
    rows = []
    for (contrast, scope), group in table.groupby(["contrast", "_scope"], sort=False):
        counts = group["_status"].value_counts()
        rows.append({"contrast": contrast, "cells": scope, "n": len(group),
                     "tested, can reject": int(counts.get("tested", 0)),
                     "tested, cannot reject": int(counts.get("cannot_reject", 0)),
                     "identical (not tested)": int(counts.get("identical", 0)),
                     "not tested": int(counts.get("not_tested", 0)),
                     f"p_fdr <= {alpha:g}": int(group["_significant"].sum()),
                     "median mde": group["mde"].median() if "mde" in group else np.nan})
    return pd.DataFrame(rows)


def largest_contrasts(stats: pd.DataFrame, *, n: int = 5) -> pd.DataFrame:
    """Return the ``n`` tested layer cells of each contrast with the largest absolute estimate."""
    tested = stats[stats["p_value"].notna() & stats["layer_index"].notna()]
    tested = tested.assign(_size=tested["estimate"].abs()).sort_values("_size", ascending=False, kind="stable")
    top = tested.groupby("contrast", sort=False).head(n)
    columns = ["contrast", "layer", "feature", "estimate", "ci_low", "ci_high", "p_value", "p_fdr", "mde", "status"]
    return top[[c for c in columns if c in top]].reset_index(drop=True)
