"""The comparison design: per-model scores from ``probes.parquet``, the domains present, the contrasts.

A *score* is one number per model x layer x feature (by default the ridge probe's pooled
out-of-fold R^2). Models carry their ``pretrain_domain``; the random-weight control and unknown
models (``"none"``) never enter a domain contrast but are counted for the report.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ..contract import all_fold_scores, model_order
from ..errors import ParameterError

__all__ = ["CONTRAST_DOMAINS", "CONTROL_DOMAIN", "SCORE_COLUMNS", "model_scores", "model_table",
           "parse_contrasts", "contrast_name", "score_matrix", "is_constant", "identical_cells", "IDENTICAL_RTOL"]

IDENTICAL_RTOL = 1e-5

CONTRAST_DOMAINS = ("speech", "nonspeech", "mixed")
CONTROL_DOMAIN = "none"
SCORE_COLUMNS = ["model", "pretrain_domain", "seed", "layer", "layer_index", "feature", "value"]
_REQUIRED = ["model", "pretrain_domain", "layer", "layer_index", "feature", "probe", "metric", "fold",
             "eval_domain", "value"]


def model_scores(probes: pd.DataFrame, *, probe: str = "ridge", metric: str = "r2_pooled") -> pd.DataFrame:
    """One score per model x layer x feature from a ``probes.parquet`` table.

    Keeps the rows of ``probe`` and ``metric`` computed over all folds (``fold`` is NA), trained
    and evaluated on all domains (``train_domain``/``eval_domain`` = ``"all"``).

    Parameters
    ----------
    probes : pd.DataFrame
        The long table of the probe stage (docs/run-folder.md).
    probe : str
        Probe name, e.g. ``"ridge"``.
    metric : str
        Metric name, e.g. ``"r2_pooled"``.

    Returns
    -------
    pd.DataFrame
        Columns ``SCORE_COLUMNS``; ``value`` is float (NaN where the probe gave none).
    """
    missing = [c for c in _REQUIRED if c not in probes.columns]
    if missing:
        raise ParameterError(f"probes table lacks column(s) {missing}; it must follow docs/run-folder.md "
                             f"(probes.parquet)")
    rows = probes[probes["probe"] == probe]
    if rows.empty:
        raise ParameterError(f"probe must be one of {sorted(probes['probe'].dropna().unique())}, got {probe!r}")
    rows = all_fold_scores(rows, probe=probe, metric=metric)
    if rows.empty:
        allowed = sorted(probes.loc[(probes["probe"] == probe) & probes["fold"].isna(), "metric"].dropna().unique())
        raise ParameterError(f"metric must be one of the all-fold metrics of probe {probe!r} {allowed}, "
                             f"got {metric!r}")
    key = ["model", "layer", "feature"]
    dup = rows.duplicated(key, keep=False)
    if dup.any():
        example = rows.loc[dup, key].iloc[0].to_dict()
        raise ParameterError(f"probes table has {int(dup.sum())} rows sharing model, layer and feature for probe "
                             f"{probe!r}, metric {metric!r} (e.g. {example}); expected one score per cell")
    table = rows.assign(seed=rows["seed"] if "seed" in rows.columns else pd.NA)[SCORE_COLUMNS].copy()
    table["value"] = pd.to_numeric(table["value"], errors="coerce").astype(float)
    table["layer_index"] = table["layer_index"].astype("Int64")
    for col in ("model", "pretrain_domain", "layer", "feature"):
        table[col] = table[col].astype(str)
    domains = table.groupby("model")["pretrain_domain"].nunique()
    if (domains > 1).any():
        raise ParameterError(f"model(s) {list(domains.index[domains > 1])} have more than one pretrain_domain "
                             f"in the probes table")
    unknown = sorted(set(table["pretrain_domain"]) - set(CONTRAST_DOMAINS) - {CONTROL_DOMAIN})
    if unknown:
        raise ParameterError(f"pretrain_domain must be one of {[*CONTRAST_DOMAINS, CONTROL_DOMAIN]}, "
                             f"got {unknown}")
    return table.reset_index(drop=True)


def model_table(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per model.

    ``model``, ``pretrain_domain``, ``seed``, in :func:`~audioprobe.contract.model_order` (by domain, then seed and
    name).
    """
    models = scores.drop_duplicates("model")[["model", "pretrain_domain", "seed"]]
    position = {m: i for i, m in enumerate(model_order(models))}
    return models.sort_values("model", key=lambda m: m.map(position)).reset_index(drop=True)


def _describe_domains(models: pd.DataFrame) -> str:
    counts = models["pretrain_domain"].value_counts()
    parts = [f"{d}: {int(counts.get(d, 0))}" for d in (*CONTRAST_DOMAINS, CONTROL_DOMAIN)]
    return "models per pretrain_domain: " + ", ".join(parts) + f" ('{CONTROL_DOMAIN}' = random-weight control " \
        "or unknown, never contrasted)"


def contrast_name(pair: Sequence[str]) -> str:
    """``("speech", "nonspeech") -> "speech-nonspeech"``."""
    return f"{pair[0]}-{pair[1]}"


def parse_contrasts(contrasts: Iterable[str | Sequence[str]] | None, models: pd.DataFrame) -> list[tuple[str, str]]:
    """Validate the contrasts against the domains that have models.

    Parameters
    ----------
    contrasts : iterable of str or (str, str), or None
        ``"speech-nonspeech"`` or ``("speech", "nonspeech")``: the estimate is the first domain's
        score minus the second's. None: every pair of the domains present, in the order
        speech, nonspeech, mixed.
    models : pd.DataFrame
        :func:`model_table` output.

    Returns
    -------
    list of (str, str)
    """
    present = [d for d in CONTRAST_DOMAINS if (models["pretrain_domain"] == d).any()]
    if contrasts is None:
        if len(present) < 2:
            raise ParameterError("a domain comparison needs models from at least two pretraining domains among "
                                 f"{list(CONTRAST_DOMAINS)}; {_describe_domains(models)}")
        return [(a, b) for i, a in enumerate(present) for b in present[i + 1:]]
    pairs = []
    for item in ([contrasts] if isinstance(contrasts, str) else contrasts):
        pair = tuple(item.split("-")) if isinstance(item, str) else tuple(item)
        if len(pair) != 2 or pair[0] == pair[1] or any(d not in CONTRAST_DOMAINS for d in pair):
            raise ParameterError(f"contrasts must be pairs of distinct domains among {list(CONTRAST_DOMAINS)} "
                                 f"written 'a-b' or (a, b), got {item!r}")
        absent = [d for d in pair if d not in present]
        if absent:
            raise ParameterError(f"contrast {contrast_name(pair)!r} needs models pretrained on {absent}; "
                                 f"{_describe_domains(models)}")
        pairs.append(pair)
    if not pairs:
        raise ParameterError("contrasts must name at least one pair of domains, got an empty list")
    return list(dict.fromkeys(pairs))


def score_matrix(scores: pd.DataFrame) -> pd.DataFrame:
    """Scores as a (layer, layer_index, feature) x model matrix, rows in layer then feature order."""
    wide = scores.pivot(index=["layer_index", "layer", "feature"], columns="model", values="value")
    return wide.sort_index(level=["layer_index", "feature"]).astype(float)


def is_constant(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Whether the finite values along ``axis`` are all equal (up to rounding, 1e-12 relative)."""
    values = np.asarray(values, dtype=float)
    known = ~np.isnan(values)  # an all-NaN row (a descriptor undefined on every clip) is constant, without a warning
    spread = np.where(known, values, -np.inf).max(axis=axis) - np.where(known, values, np.inf).min(axis=axis)
    scale = np.where(known, np.abs(values), 0.0).max(axis=axis)
    return ~(spread > 1e-12 * np.maximum(scale, 1e-300))


def identical_cells(wide: pd.DataFrame, *, rtol: float = IDENTICAL_RTOL) -> pd.Series:
    """Cells whose score is the same for every model up to float noise: identical by construction.

    The input layer (``logmel``, ``layer_index`` 0) is the same array for every model, so its
    probe scores differ only by float rounding (~1e-8 R^2 in real runs). A cell counts as
    identical when its range over the models (the random-weight control included) is at most
    ``rtol`` times the larger of its largest absolute score and the median range of all cells:
    real between-seed differences are 3 or more orders of magnitude above that.

    Parameters
    ----------
    wide : pd.DataFrame, shape (n_cells, n_models)
        :func:`score_matrix` output (NaN = no score).
    rtol : float
        Relative tolerance.

    Returns
    -------
    pd.Series of bool, indexed like ``wide``
        False for cells with fewer than 2 finite scores.
    """
    values = wide.to_numpy(dtype=float)
    finite = np.isfinite(values).sum(axis=1)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        spread = np.nanmax(values, axis=1) - np.nanmin(values, axis=1)
        scale = np.maximum(np.nanmax(np.abs(values), axis=1), np.nanmedian(spread))
    return pd.Series((finite >= 2) & (spread <= rtol * np.nan_to_num(scale)), index=wide.index)
