"""The ``compare`` stage on a run folder: probes.parquet (+ oof.parquet) -> stats.parquet + stats_summary.txt."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..contract import OOF, PROBES, STATS, STATS_SUMMARY
from ..errors import ParameterError
from ..log import logger
from ..runner import blas_threads
from ..runstore import Run, atomic_path
from .compare import compare_domains
from .design import model_scores, model_table
from .summary import summarize

__all__ = ["STAGE", "compare_run"]

STAGE = "compare"


def compare_run(run: Run | str | Path, *, unit: str = "auto", contrasts: Sequence[str] | None = None,
                alpha: float = 0.05, n_permutations: int = 10000, n_bootstraps: int = 9999,
                metric: str = "r2_pooled", probe: str = "ridge", mixed: bool = True, random_state: int = 0,
                seed_test: str = "t", power_delta: float | None = None, force: bool = False) -> pd.DataFrame:
    """Compare pretraining domains on a run folder's probe scores and write the results.

    Parameters
    ----------
    run : Run, str or Path
        A run folder holding ``probes.parquet`` (and ``oof.parquet`` for ``unit="clip"``).
    unit, contrasts, alpha, n_permutations, n_bootstraps, metric, probe, mixed, random_state, seed_test, power_delta
        See :func:`audioprobe.analysis.compare_domains`.
    force : bool
        Recompute even when the stage is complete for the same inputs and options.

    Returns
    -------
    stats : pd.DataFrame
        The table written to ``stats.parquet`` (one row per contrast x layer x feature).
    """
    run = run if isinstance(run, Run) else Run(run, create=False)
    if not run.exists(PROBES):
        raise ParameterError(f"{str(run.file(PROBES))!r} does not exist: run `audioprobe probe {run.path}` first")
    use_oof = unit != "seed" and run.exists(OOF)
    inputs = {name: run.sha256(name) for name in (PROBES, OOF) if name == PROBES or use_oof}
    config = {"unit": unit, "contrasts": list(contrasts) if contrasts else None, "alpha": alpha,
              "n_permutations": n_permutations, "n_bootstraps": n_bootstraps, "metric": metric, "probe": probe,
              "mixed": mixed, "random_state": random_state, "seed_test": seed_test, "power_delta": power_delta}
    with run.stage(STAGE, config=config, seeds={"random_state": random_state}, inputs=inputs,
                   outputs=(STATS, STATS_SUMMARY), force=force) as stage:
        if stage.up_to_date:
            logger.info("compare: up to date (same probes and options); reading %s (--force recomputes)",
                        run.file(STATS))
            return run.read_table(STATS)
        probes = run.read_table(PROBES)
        with blas_threads(1):  # small matrices: threaded BLAS only adds contention
            stats = compare_domains(probes, unit=unit, contrasts=contrasts, alpha=alpha,
                                    n_permutations=n_permutations, n_bootstraps=n_bootstraps, random_state=random_state,
                                    oof=run.read_table(OOF) if use_oof else None, metric=metric, probe=probe,
                                    mixed=mixed, seed_test=seed_test, power_delta=power_delta)
        run.write_table(STATS, stats)
        text = summarize(stats, alpha=alpha, models=model_table(model_scores(probes, probe=probe, metric=metric)),
                     power_delta=power_delta)
        with atomic_path(run.file(STATS_SUMMARY)) as tmp:
            tmp.write_text(text)
        tested = stats["p_value"].notna()
        stage.complete(n_rows=len(stats), n_tested=int(tested.sum()),
                       n_significant=int((stats.loc[tested, "p_fdr"] <= alpha).sum()),
                       units=sorted(stats["unit"].unique()))
    logger.info("%s", text.rstrip())
    return stats
