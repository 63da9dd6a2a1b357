"""The report of one run: summary, methods, figures, per-layer tables, statistics, failures and
provenance, as one self-contained HTML page (``RUN/report.html``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..contract import REPORT
from ..log import logger
from ..runstore import Run, fingerprint
from .methods import environment_table, methods_paragraph, recorded_parameters, stage_table
from .registry import FIGURES, build_figures
from .report import Report
from .tables import (MissingInput, RunTables, descriptor_columns, descriptor_order, headline_scores, layer_names,
                     model_order)

__all__ = ["run_report", "build_report", "best_layers", "best_layer_overview", "domain_layer_table", "SECTIONS",
           "STAGE"]

STAGE = "report"

#: Section anchors of the report, in order.
SECTIONS = ("summary", "methods", "figures", "per-layer", "statistics", "failures", "provenance")


def best_layers(scores: pd.DataFrame) -> pd.DataFrame:
    """The best layer of each model for each descriptor, and its gain over the log-mel input.

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
    """:func:`best_layers` as one row per descriptor and one column per model, each cell
    ``"<layer>: <score> (<gain over the input>)"``."""
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
    """Mean score over the models of one pretraining domain: one row per descriptor, one column per
    layer (forward order)."""
    rows = scores[scores["pretrain_domain"] == domain]
    names = layer_names(rows)
    table = rows.pivot_table(index="feature", columns="layer_index", values="value", aggfunc="mean")
    table = table.reindex(index=descriptor_order(rows["feature"], order), columns=sorted(names))
    table.columns = [names[i] for i in table.columns]
    return table.reset_index(names="descriptor")


def _summary(report: Report, tables: RunTables) -> None:
    report.add_section("Summary", section_id="summary")
    clips, features, failures = tables.get("clips"), tables.get("features"), tables.get("failures")
    rows = []
    if clips is not None:
        rows.append(("clips in the run", len(clips)))
    if features is not None:
        rows.append(("clips with descriptors", len(features)))
        rows.append(("descriptors", len(descriptor_columns(features))))
    rows.append(("models", len(tables.models)))
    rows.append(("failures recorded", 0 if failures is None else len(failures)))
    for name in ("probes", "stats"):
        table = tables.get(name)
        rows.append((f"{name} rows", "absent" if table is None else len(table)))
    report.add_table(pd.DataFrame(rows, columns=["item", "value"]))
    if tables.models:
        report.add_table(pd.DataFrame([{"model": name, **{k: info.get(k) for k in (
            "spec", "arch", "pretrain_domain", "seed", "control", "d", "norm_source", "device")},
            "layers": len(tables.layers(name))} for name, info in tables.models.items()]), title="Models")


def _figures(report: Report, tables: RunTables) -> None:
    report.add_section("Figures", section_id="figures")
    built = set()
    for spec, figure in build_figures(tables):
        report.add_figure(figure, title=spec.title, caption=f"figures/{spec.name}.png / .pdf")
        built.add(spec.name)
    skipped = [FIGURES[name].title for name in FIGURES if name not in built]
    if skipped:
        report.add_paragraph("Not drawn (their input is absent from this run): " + "; ".join(skipped) + ".",
                             css_class="note")


def _per_layer(report: Report, tables: RunTables) -> None:
    report.add_section("Per-layer results", section_id="per-layer")
    probes = tables.get("probes")
    try:
        scores = headline_scores(probes) if probes is not None else None
    except MissingInput:
        scores = None
    if scores is None:
        report.add_paragraph("No ridge probe scores (probes.parquet with r2_pooled rows) in this run.",
                             css_class="note")
        return
    order = tables.descriptor_names()
    report.add_table(best_layer_overview(best_layers(scores), order=order),
                     title="Best layer per descriptor (ridge, pooled out-of-fold R^2)",
                     caption="Each cell: the model's best layer, its R^2, and in brackets its gain over the "
                             "log-mel input (layer 0).", max_rows=1000)
    domains = dict.fromkeys(scores.drop_duplicates("model").set_index("model").loc[model_order(scores),
                                                                                    "pretrain_domain"])
    for domain in domains:
        n = scores.loc[scores["pretrain_domain"] == domain, "model"].nunique()
        report.add_table(domain_layer_table(scores, domain, order=order),
                         title=f"Pooled out-of-fold R^2 per layer: pretraining domain {domain} "
                               f"(mean of {n} model{'s' if n > 1 else ''})", max_rows=1000)


def _statistics(report: Report, tables: RunTables) -> None:
    report.add_section("Statistics", section_id="statistics")
    stats = tables.get("stats")
    if tables.run.exists("stats_summary.txt"):
        report.add_preformatted(tables.run.file("stats_summary.txt").read_text(encoding="utf-8"))
    if stats is None:
        report.add_paragraph("No domain comparison (stats.parquet) in this run.", css_class="note")
        return
    constant = [c for c in ("probe", "metric", "test", "correction", "unit", "n", "note")
                if c in stats and len(stats) and stats[c].nunique(dropna=False) == 1]
    shared = [f"{c}: {stats[c].iloc[0]}" for c in constant if pd.notna(stats[c].iloc[0]) and stats[c].iloc[0] != ""]
    significant = stats[stats["p_fdr"] < 0.05].sort_values("p_fdr", kind="stable")
    report.add_paragraph(f"{len(significant)} of {len(stats)} contrast x layer x descriptor cells have "
                         f"p_fdr < 0.05." + (f" The same for every cell: {'; '.join(shared)}." if shared else ""))
    stats = stats.drop(columns=constant)
    significant = significant.drop(columns=constant)
    if not significant.empty:
        report.add_table(significant, title="Significant cells (p_fdr < 0.05)")
    ordered = stats.sort_values(["contrast", "feature", "layer_index"], kind="stable")
    report.add_table(ordered, title="All contrasts", max_rows=300)


def _failures(report: Report, tables: RunTables) -> None:
    report.add_section("Failures", section_id="failures")
    failures = tables.get("failures")
    if failures is None or failures.empty:
        report.add_paragraph("No failures recorded.")
        return
    counts = failures.groupby(["stage", "error_type"], dropna=False).size().rename("count").reset_index()
    report.add_paragraph(f"{len(failures)} failure(s); failed clips are absent from the tables of their stage.")
    report.add_table(counts, title="Counts by stage and error type")
    report.add_table(failures, title="Failed clips and stages", max_rows=500)


def _provenance(report: Report, tables: RunTables) -> None:
    report.add_section("Provenance", section_id="provenance")
    info = tables.info
    if not set(info.get("stages", {})) - {"figures", "report"}:
        report.add_paragraph("run.json records no stage that computed these results: no provenance recorded.",
                             css_class="note")
        return
    report.add_table(environment_table(info), title="Environment", max_rows=1000)
    report.add_table(stage_table(info), title="Stages")
    report.add_table(recorded_parameters(info), title="Recorded parameters", max_rows=2000)
    if tables.models:
        report.add_table(pd.DataFrame([{"model": name, "spec": m.get("spec"),
                                        "checkpoint_sha256": m.get("checkpoint_sha256")}
                                       for name, m in tables.models.items()]), title="Model checkpoints")


def run_report(run: Run | str | Path) -> Report:
    """The :class:`Report` of a run, built from its saved tables and run.json alone."""
    tables = RunTables(run)
    report = Report(f"audioprobe report: {tables.run.path.resolve().name}")
    _summary(report, tables)
    report.add_section("Methods", section_id="methods")
    report.add_paragraph(methods_paragraph(tables))
    _figures(report, tables)
    _per_layer(report, tables)
    _statistics(report, tables)
    _failures(report, tables)
    _provenance(report, tables)
    return report


def build_report(run: Run | str | Path, *, output: str | Path | None = None, force: bool = False) -> Path:
    """Write the self-contained report of a run (the ``report`` stage).

    The page is rewritten only when the run's state (:meth:`RunTables.state`: its tables,
    activations and stage settings) changed since it was written, or with ``force``.

    Parameters
    ----------
    run : Run, str or Path
        The run folder (must exist).
    output : str or Path, optional, keyword-only
        Where to write the page; ``RUN/report.html`` by default.
    force : bool, keyword-only
        Rewrite the page even when it is up to date.

    Returns
    -------
    Path
        The page.
    """
    tables = RunTables(run)
    path = Path(output).resolve() if output is not None else tables.run.file(REPORT)
    with tables.run.stage(STAGE, config={"output": str(path)}, inputs={"state": fingerprint(tables.state())},
                          outputs=(path,), force=force, computes=False) as stage:
        if stage.up_to_date:
            logger.info("report up to date: %s (--force rewrites it)", path)
            return path
        run_report(tables.run).save(path)
        stage.complete(output=str(path))
    logger.info("report written to %s", path)
    return path
