"""The short text summary of a domain comparison (``stats_summary.txt``)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .design import CONTRAST_DOMAINS, CONTROL_DOMAIN
from .mixed import FIT_STATUS
from .power import POWER

__all__ = ["summarize"]


def _cell(row: pd.Series) -> str:
    where = "all layers" if row["layer"] == "all" else f"layer {row['layer']}"
    what = "all descriptors" if row["feature"] == "all" else row["feature"]
    return (f"  {row['contrast']:<17} {where:<18} {what:<24} {row['estimate']:+.4f} "
            f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]  p={row['p_value']:.3g}  p_fdr={row['p_fdr']:.3g}  "
            f"mde={row['mde']:.4f}")


def _limits(stats: pd.DataFrame, alpha: float) -> list[str]:
    """Return what the tests can and cannot show: untested cells, designs that cannot reject, smallest p."""
    lines = ["what these tests can and cannot show:"]
    grid = stats[stats["layer"] != "all"]
    counts = grid["status"].value_counts()
    identical = grid[grid["status"] == "identical"]
    if len(identical):
        layers = ", ".join(sorted(set(identical["layer"].astype(str))))
        lines.append(f"  - {len(identical)} cells are identical by construction for every model ({layers}): "
                     "described, not tested, kept out of the FDR families and of the layer averages")
    cannot = stats[stats["status"] == "cannot_reject"]
    if len(cannot):
        lines.append(f"  - CANNOT REJECT: {len(cannot)} tests have a smallest attainable p of "
                     f"{cannot['smallest_p'].min():.3g} or more > alpha = {alpha}; their lack of significance says "
                     "nothing about a difference (column can_reject = False)")
    untested = int(counts.get("not_tested", 0)) + int((stats["layer"].eq("all") & stats["status"].eq("not_tested"))
                                                        .sum())
    if untested:
        example = stats.loc[stats["status"] == "not_tested", "note"].iloc[0]
        lines.append(f"  - {untested} rows not tested (reason in the 'note' column), e.g. {example}")
    tested = stats[stats["status"] == "tested"]
    smallest = tested["smallest_p"].dropna()
    if len(smallest) and smallest.max() > 0:
        lines.append(f"  - smallest attainable p of the resampling tests: {smallest.max():.3g}")
    lines.append(f"  - a cell without p_fdr <= {alpha} is not evidence of no difference: compare its interval with "
                 f"its mde (the difference detectable with {POWER:.0%} power)")
    return lines


def _fits(stats: pd.DataFrame) -> list[str]:
    fits = stats.loc[stats["fit"].fillna("") != "", "fit"].value_counts()
    if fits.empty:
        return []
    lines = [f"mixed models: {int(fits.sum())} fits (rule: standardise, refit non-converged fits with another "
             "optimiser, replace non-converged and boundary fits by the Student t-test of layer-averaged seed scores)"]
    lines += [f"  - {status}: {int(n)} ({FIT_STATUS[status]})" for status, n in fits.items()]
    return lines


def _power(stats: pd.DataFrame, alpha: float) -> list[str]:
    rows = stats[stats["mde"].notna()]
    if rows.empty:
        return []
    lines = [f"power (two-sided, alpha = {alpha} per test, before FDR): smallest difference detectable with "
             f"{POWER:.0%} power given the observed spread (mde, score units), median [min, max] per contrast:"]
    for (contrast, is_grid), part in rows.groupby([rows["contrast"], rows["layer"] != "all"], sort=False):
        what = "layer x feature cells" if is_grid else "layer averages"
        lines.append(f"  {contrast:<17} {what:<22} mde {part['mde'].median():.4f} "
                     f"[{part['mde'].min():.4f}, {part['mde'].max():.4f}]")
    needed = stats["seeds_needed"].dropna()
    if len(needed):
        finite = needed[np.isfinite(needed)]
        lines.append(f"seeds per domain needed for the --power difference at {POWER:.0%} power: median "
                     f"{finite.median():.0f}, range {finite.min():.0f}-{finite.max():.0f} over {len(finite)} rows"
                     + (f"; {len(needed) - len(finite)} need more than a million" if len(finite) < len(needed) else ""))
    return lines


def summarize(stats: pd.DataFrame, *, alpha: float = 0.05, models: pd.DataFrame | None = None,
              max_cells: int = 40, power_delta: float | None = None) -> str:
    """Text summary: tests, correction, unit of inference, limits, power, significant cells.

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
    power_delta : float, optional
        The difference ``seeds_needed`` was computed for (named in the text).

    Returns
    -------
    str
    """
    lines = ["audioprobe compare: does the pretraining domain change what each layer encodes?"]
    if not stats.empty:
        lines.append(f"score: probe {stats['probe'].iloc[0]!r}, metric {stats['metric'].iloc[0]!r}; "
                     "estimate = first domain of the contrast minus the second")
    units = sorted(stats["unit"].unique())
    lines.append("unit of inference: " + ", ".join(units) + (" (the trained models: inference reaches other seeds "
                                                              "of the same recipe)" if units == ["seed"] else ""))
    if models is not None:
        counts = models["pretrain_domain"].value_counts()
        lines.append("models: " + ", ".join(f"{d} {int(counts.get(d, 0))}" for d in CONTRAST_DOMAINS)
                     + f"; excluded from every contrast: {int(counts.get(CONTROL_DOMAIN, 0))} with pretrain_domain "
                       f"'{CONTROL_DOMAIN}' (random-weight control or unknown)")
    if "clip" in units:
        lines.append("NOTE: with one model per domain the inference is over clips (groups of clips) of those "
                     "models only; it does not reach beyond these models to other seeds or trainings.")
    lines.append("tests (p-value and interval from the same statistic):")
    tested = stats[stats["p_value"].notna()]
    for test, rows in tested.groupby("test", sort=False):
        lines.append(f"  - {test}: {len(rows)} tests")
    lines.append("multiple comparisons:")
    for correction in tested["correction"].unique():
        lines.append(f"  - {correction}")
    lines += _limits(stats, alpha) + _fits(stats) + _power(stats, alpha)
    if power_delta is not None:
        lines[-1] = lines[-1].replace("the --power difference", f"a difference of {power_delta:g}")
    significant = tested[tested["p_fdr"] <= alpha]
    lines.append(f"significant at FDR {alpha} (p_fdr <= {alpha}): {len(significant)} of {len(tested)} tests")
    lines += [_cell(row) for _, row in significant.head(max_cells).iterrows()]
    if len(significant) > max_cells:
        lines.append(f"  ... and {len(significant) - max_cells} more (see stats.parquet)")
    return "\n".join(lines) + "\n"
