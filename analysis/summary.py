"""The short text summary of a domain comparison (``stats_summary.txt``)."""
from __future__ import annotations

import pandas as pd

from .design import CONTRAST_DOMAINS, CONTROL_DOMAIN

__all__ = ["summarize"]


def _cell(row: pd.Series) -> str:
    where = "all layers" if row["layer"] == "all" else f"layer {row['layer']}"
    what = "all descriptors" if row["feature"] == "all" else row["feature"]
    return (f"  {row['contrast']:<17} {where:<18} {what:<24} {row['estimate']:+.4f} "
            f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]  p={row['p_value']:.3g}  p_fdr={row['p_fdr']:.3g}")


def summarize(stats: pd.DataFrame, *, alpha: float = 0.05, models: pd.DataFrame | None = None,
              max_cells: int = 40) -> str:
    """Text summary: tests, correction, unit of inference, significant cells.

    Parameters
    ----------
    stats : pd.DataFrame
        :func:`~.compare.compare_domains` output.
    alpha : float
        Cells with ``p_fdr <= alpha`` are listed as significant.
    models : pd.DataFrame, optional
        :func:`~.design.model_table` output, for the model counts per domain.
    max_cells : int
        Significant cells listed before "... and N more".

    Returns
    -------
    str
    """
    lines = ["audioprobe compare: does the pretraining domain change what each layer encodes?"]
    if not stats.empty:
        lines.append(f"score: probe {stats['probe'].iloc[0]!r}, metric {stats['metric'].iloc[0]!r}; "
                     "estimate = first domain of the contrast minus the second")
    units = sorted(stats["unit"].unique())
    lines.append("unit of inference: " + ", ".join(units))
    if models is not None:
        counts = models["pretrain_domain"].value_counts()
        lines.append("models: " + ", ".join(f"{d} {int(counts.get(d, 0))}" for d in CONTRAST_DOMAINS)
                     + f"; excluded from every contrast: {int(counts.get(CONTROL_DOMAIN, 0))} with pretrain_domain "
                       f"'{CONTROL_DOMAIN}' (random-weight control or unknown)")
    if "clip" in units:
        lines.append("NOTE: with one model per domain the inference is over clips (groups of clips) of those "
                     "models only; it does not reach beyond these models to other seeds or trainings.")
    lines.append("tests:")
    tested = stats[stats["p_value"].notna()]
    for test, rows in tested.groupby("test", sort=False):
        lines.append(f"  - {test}: {len(rows)} tests")
    lines.append("multiple comparisons:")
    for correction in tested["correction"].unique():
        lines.append(f"  - {correction}")
    untested = stats[stats["p_value"].isna()]
    if len(untested):
        lines.append(f"not tested: {len(untested)} rows (reason in the 'note' column of stats.parquet), e.g. "
                     f"{untested['note'].iloc[0]}")
    significant = tested[tested["p_fdr"] <= alpha]
    lines.append(f"significant at FDR {alpha} (p_fdr <= {alpha}): {len(significant)} of {len(tested)} tests")
    lines += [_cell(row) for _, row in significant.head(max_cells).iterrows()]
    if len(significant) > max_cells:
        lines.append(f"  ... and {len(significant) - max_cells} more (see stats.parquet)")
    return "\n".join(lines) + "\n"
