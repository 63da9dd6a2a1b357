"""audioprobe.analysis: whether the pretraining domain changes what each layer encodes.

:func:`compare_domains` picks the tests valid for the design and labels its output with the test,
the correction and the unit of inference: with several seeds per domain, Student t-tests of the
seeds' scores, or permutation of domain labels (:mod:`.seed_unit`), and mixed-effects models
(:mod:`.mixed`); with one model per domain, a paired wild bootstrap over groups of clips
(:mod:`.clip_unit`). Every p-value and interval come from one statistic; cells identical by
construction are described, not tested; every contrast carries its power analysis (:mod:`.power`).
Benjamini-Hochberg FDR (:func:`fdr_bh`) within each contrast; :func:`summarize` writes the text
summary; :func:`calibrate` measures every test's false-positive rate and power on simulated designs
(:mod:`.simulate`).

Names are imported on first use, so that ``audioprobe --help`` (which imports ``analysis.cli``)
does not load statsmodels and scipy.
"""
from __future__ import annotations

from ..lazy import lazy_exports

_WHERE = {
    "compare_domains": "compare", "compare_run": "stage", "choose_unit": "compare", "STATS_COLUMNS": "compare",
    "fdr_bh": "fdr", "summarize": "summary", "calibrate": "calibration", "CALIBRATION_TESTS": "calibration",
    "model_scores": "design", "model_table": "design", "parse_contrasts": "design",
    "label_permutation_test": "permutation", "sign_flip_test": "permutation",
    "wild_r2_difference_ci": "bootstrap", "wild_r2_difference_test": "bootstrap", "fit_domain_model": "mixed",
    "domain_contrast": "mixed", "minimum_detectable_effect": "power", "seeds_needed": "power",
}

__all__ = list(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
