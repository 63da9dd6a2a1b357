"""The domain-comparison entry point: pick the valid tests for the design, run them, correct, label.

* Several models (seeds) per domain -> the seed is the unit: per layer x feature a Student t-test
  of the seeds' scores (or, as an option, a permutation of domain labels), plus mixed models per
  descriptor and across descriptors (rows with ``layer="all"``; ``feature="all"`` for the
  across-descriptor model).
* One model per domain -> clips are the unit: paired wild cluster bootstrap over groups of clips
  of the pooled R^2 difference (test and interval from the same bootstrap distribution); every
  row's note says that the inference does not reach beyond those two models.

Cells identical by construction (the shared input layer) are described, not tested. p-values are
adjusted with Benjamini-Hochberg within each contrast: over the layer x feature grid, and
separately over the per-descriptor mixed models. The ``test``, ``correction``, ``unit`` and
``status`` columns say what was done; ``mde`` is the power analysis beside every contrast.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import ParameterError, check_choice
from ..log import logger
from .clip_unit import clip_contrast_grid
from .design import (
    CONTRAST_DOMAINS,
    identical_cells,
    is_constant,
    model_scores,
    model_table,
    parse_contrasts,
    score_matrix,
)
from .fdr import FDR_METHOD, fdr_bh
from .mixed import mixed_contrasts
from .power import seeds_needed
from .seed_unit import SEED_TESTS, seed_grid

__all__ = ["compare_domains", "choose_unit", "STATS_COLUMNS", "UNITS"]

STATS_COLUMNS = ["contrast", "layer", "layer_index", "feature", "probe", "metric", "estimate", "ci_low", "ci_high",
                 "p_value", "p_fdr", "test", "correction", "unit", "n", "note", "status", "can_reject", "smallest_p",
                 "seed_sd", "mde", "seeds_needed", "fit"]
UNITS = ("seed", "clip", "auto")


def _domain_members(models: pd.DataFrame, pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    domains = [d for d in CONTRAST_DOMAINS if any(d in pair for pair in pairs)]
    return {d: models.loc[models["pretrain_domain"] == d, "model"].tolist() for d in domains}


def choose_unit(models: pd.DataFrame, pairs: list[tuple[str, str]], *, has_oof: bool) -> str:
    """``"seed"`` when every contrasted domain has 2+ models, ``"clip"`` when each has exactly one and oof exists.

    Raises
    ------
    ParameterError
        When neither design applies (mixed counts, or one model per domain without oof).
    """
    counts = {d: len(m) for d, m in _domain_members(models, pairs).items()}
    if all(c >= 2 for c in counts.values()):
        return "seed"
    if all(c == 1 for c in counts.values()) and has_oof:
        return "clip"
    raise ParameterError(f"unit='auto' found no valid design: models per domain {counts}; the seed as unit needs "
                         "2 or more models in every contrasted domain, clips as unit need exactly one per domain "
                         "and the out-of-fold predictions (oof.parquet)")


def _check_seed_design(models: pd.DataFrame, pairs: list[tuple[str, str]]) -> None:
    members = _domain_members(models, pairs)
    short = {d: m for d, m in members.items() if len(m) < 2}
    if short:
        lacking = ", ".join(f"{d!r} has {len(m)} ({', '.join(m)})" for d, m in short.items())
        raise ParameterError(f"unit='seed' needs at least 2 models (seeds) per contrasted domain, but {lacking}; "
                             "train more seeds, or use unit='clip' for one model per domain (inference over clips "
                             "of those models only)")


def _clip_models(models: pd.DataFrame, pairs: list[tuple[str, str]], oof: pd.DataFrame | None) -> dict[str, str]:
    if oof is None:
        raise ParameterError("unit='clip' needs oof, the per-clip out-of-fold predictions (oof.parquet)")
    missing = [c for c in ("model", "layer", "feature", "clip_id", "y_true", "y_pred") if c not in oof.columns]
    if missing:
        raise ParameterError(f"oof table lacks column(s) {missing}; it must follow docs/run-folder.md (oof.parquet)")
    members = _domain_members(models, pairs)
    several = {d: m for d, m in members.items() if len(m) != 1}
    if several:
        raise ParameterError(f"unit='clip' compares exactly one model per domain, but {several}; use unit='seed' "
                             "for several seeds per domain, or pass tables holding one model per domain")
    chosen = {d: m[0] for d, m in members.items()}
    absent = [m for m in chosen.values() if m not in set(oof["model"].astype(str))]
    if absent:
        raise ParameterError(f"oof table has no predictions of model(s) {absent}")
    return chosen


def _check_options(alpha: float, n_permutations: int, n_bootstraps: int, power_delta: float | None) -> None:
    if not isinstance(alpha, (int, float)) or not 0.0 < alpha < 1.0:
        raise ParameterError(f"alpha must be a number in (0, 1), got {alpha!r}")
    if power_delta is not None and not (isinstance(power_delta, (int, float)) and np.isfinite(power_delta)
                                        and power_delta != 0):
        raise ParameterError(f"power_delta (--power) must be a nonzero difference in the score's units, "
                             f"got {power_delta!r}")
    for name, value in (("n_permutations", n_permutations), ("n_bootstraps", n_bootstraps)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ParameterError(f"{name} must be a positive integer, got {value!r}")


def _adjust(table: pd.DataFrame, what: str) -> pd.DataFrame:
    """Add ``p_fdr`` and ``correction``: Benjamini-Hochberg within each contrast of ``table``."""
    table = table.assign(p_fdr=np.nan, correction="")
    for _, idx in table.groupby("contrast", sort=False).groups.items():
        p = table.loc[idx, "p_value"].to_numpy(dtype=float)
        m = int(np.isfinite(p).sum())
        table.loc[idx, "p_fdr"] = fdr_bh(p)
        if m > 1:
            table.loc[idx, "correction"] = f"Benjamini-Hochberg FDR ({FDR_METHOD}) over the {m} tested {what} " \
                                           "of this contrast"
        else:
            table.loc[idx, "correction"] = "none (one test in this contrast)" if m else "none (nothing tested)"
    return table


def _finish(stats: pd.DataFrame, *, alpha: float, power_delta: float | None) -> pd.DataFrame:
    """Return the derived columns: ``can_reject`` and, with ``power_delta``, ``seeds_needed``."""
    stats = stats.assign(can_reject=(stats["status"] == "tested") & (stats["smallest_p"] <= alpha))
    needed = np.full(len(stats), np.nan)
    if power_delta is not None:
        with_sd = stats["seed_sd"].notna().to_numpy()
        needed[with_sd] = seeds_needed(power_delta, stats.loc[with_sd, "seed_sd"].to_numpy(dtype=float), alpha=alpha)
    stats["seeds_needed"] = needed
    if "fit" not in stats.columns:
        stats["fit"] = ""
    stats["fit"] = stats["fit"].fillna("")
    return stats


def compare_domains(probes: pd.DataFrame, *, unit: str = "seed",
                    contrasts: Iterable[str | Sequence[str]] | None = None, alpha: float = 0.05,
                    n_permutations: int = 10000, n_bootstraps: int = 9999, random_state: int | None = 0,
                    oof: pd.DataFrame | None = None, metric: str = "r2_pooled", probe: str = "ridge",
                    mixed: bool = True, seed_test: str = "t", power_delta: float | None = None) -> pd.DataFrame:
    """Compare what each layer encodes between pretraining domains, with the test valid for the design.

    Parameters
    ----------
    probes : pd.DataFrame
        ``probes.parquet`` of a run (docs/run-folder.md). Models with ``pretrain_domain="none"``
        (random-weight control, unknown) are left out of every contrast.
    unit : {"seed", "clip", "auto"}
        Unit of inference. ``"seed"``: the models (2+ seeds per domain); ``"clip"``: groups of
        clips of one model per domain (needs ``oof``); ``"auto"``: ``"seed"`` when every
        contrasted domain has 2+ models, else ``"clip"``.
    contrasts : iterable of "a-b" or (a, b), optional
        Domain pairs; the estimate is a's score minus b's. Default: every pair of the domains
        present among speech, nonspeech, mixed.
    alpha : float
        Level of the intervals (``1 - alpha`` coverage) and of "significant" in summaries.
    n_permutations : int
        Maximum relabellings of ``seed_test="permutation"``; fewer possible -> exact enumeration.
    n_bootstraps : int
        Bootstrap resamples (``unit="clip"``).
    random_state : int or None
        Seed of every Monte-Carlo draw.
    oof : pd.DataFrame, optional
        ``oof.parquet``, required for ``unit="clip"``.
    metric : str
        Score compared with ``unit="seed"`` (a metric of ``probe`` over all folds). ``unit="clip"``
        always compares pooled R^2 (``"r2_pooled"``), rebuilt from ``oof``.
    probe : str
        Probe whose scores are compared (``unit="clip"``: ``"ridge"`` only).
    mixed : bool
        With ``unit="seed"``, also fit the mixed-effects models.
    seed_test : {"t", "permutation"}
        Per-cell test with ``unit="seed"`` (:mod:`.seed_unit`): Student's t-test (default; can
        reject with 3 vs 3 seeds) or the label permutation test (exact, but its smallest p is
        ``2 / comb(n_a + n_b, n_a)``: 0.1 with 3 vs 3 seeds).
    power_delta : float, optional
        A difference in the score's units: fills ``seeds_needed``, the seeds per domain a
        Student t-test needs to detect it with 80 % power given each cell's between-seed SD.

    Returns
    -------
    pd.DataFrame
        Columns :data:`STATS_COLUMNS`: one row per contrast x layer x feature (the estimate is a
        difference of scores, e.g. of R^2), and with ``unit="seed"`` and ``mixed`` the
        mixed-model rows (``layer="all"``). ``p_value`` is two-sided; NaN where no valid test
        exists, with the reason in ``note`` and ``status`` (``identical`` by construction,
        ``not_tested``). ``can_reject`` is False where the design cannot reach ``p <= alpha``
        (``smallest_p > alpha``) or nothing was tested. ``seed_sd`` is the pooled between-seed
        SD, ``mde`` the difference detectable with 80 % power at ``alpha`` (score units),
        ``seeds_needed`` the seeds per domain for ``power_delta``, ``fit`` the mixed-model fit
        status (:data:`~.mixed.FIT_STATUS`; empty for other rows).

    Raises
    ------
    ParameterError
        For a design that cannot answer the question: a contrasted domain without models, one
        seed per domain with ``unit="seed"``, several models per domain or too few groups of
        clips with ``unit="clip"``, scores that are identical for every model.
    """
    check_choice("unit", unit, UNITS)
    check_choice("seed_test", seed_test, SEED_TESTS)
    _check_options(alpha, n_permutations, n_bootstraps, power_delta)
    scores = model_scores(probes, probe=probe, metric=metric)
    models = model_table(scores)
    pairs = parse_contrasts(contrasts, models)
    if unit == "auto":
        unit = choose_unit(models, pairs, has_oof=oof is not None)
        logger.info("unit of inference: %s", unit)
    rng = np.random.default_rng(random_state)
    if unit == "seed":
        _check_seed_design(models, pairs)
        members = sum(_domain_members(models, pairs).values(), [])
        wide = score_matrix(scores)
        if is_constant(wide[members].to_numpy(), axis=1).all():
            raise ParameterError(f"the {probe} {metric} scores are identical for every model in every layer and "
                                 "feature: there is no variation between models to compare")
        identical = identical_cells(wide)
        tables = [_adjust(pd.concat([seed_grid(scores, models, pair, alpha=alpha, identical=identical, test=seed_test,
                                               n_permutations=n_permutations, rng=rng)
                                     for pair in pairs], ignore_index=True), "layer x feature cells")]
        if mixed:
            table = mixed_contrasts(scores, models, pairs, alpha=alpha, identical=identical)
            across = table["feature"] == "all"
            tables += [_adjust(table[~across], "descriptors"), _adjust(table[across], "models")]
    else:
        if (probe, metric) != ("ridge", "r2_pooled"):
            raise ParameterError(f"unit='clip' compares the ridge probe's pooled R^2 from oof; probe and metric "
                                 f"must be 'ridge' and 'r2_pooled', got {probe!r} and {metric!r}")
        chosen = _clip_models(models, pairs, oof)
        layer_index = dict(zip(scores["layer"], scores["layer_index"]))
        grids = [clip_contrast_grid(oof, chosen[a], chosen[b], (a, b), layer_index=layer_index, alpha=alpha,
                                    n_bootstraps=n_bootstraps, rng=rng)
                 for a, b in pairs]
        tables = [_adjust(pd.concat(grids, ignore_index=True), "layer x feature cells")]
    stats = _finish(pd.concat(tables, ignore_index=True).assign(probe=probe, metric=metric), alpha=alpha,
                    power_delta=power_delta)[STATS_COLUMNS]
    for noted in stats.loc[stats["status"] == "cannot_reject", "note"].unique():
        logger.warning("%s", noted)
    return stats

