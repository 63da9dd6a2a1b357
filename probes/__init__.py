"""audioprobe.probes: which descriptors each layer encodes.

Ridge probes (:class:`RidgeProbe`), RSA (:class:`RSAProbe`), CKA (:func:`linear_cka`), variance
partitioning (:class:`VariancePartition`), cross-domain transfer (:class:`DomainTransfer`), grouped
splitters (:class:`GroupFolds`), and the stage driver :func:`run_probes`.

Names are imported on first use, so that ``audioprobe --help`` (which imports ``probes.cli``)
does not load scikit-learn and scipy.
"""
from __future__ import annotations

from ..lazy import lazy_exports

_WHERE = {
    "RidgeProbe": "ridge", "cross_validate_ridge": "ridge", "fit_predict_ridge": "ridge_solver",
    "RSAProbe": "rsa", "layer_rdm": "rdm", "descriptor_rdm": "rdm", "compare_rdms": "rdm",
    "permutation_null": "rsa_resampling", "bootstrap_distribution": "rsa_resampling",
    "linear_cka": "cka", "gram_linear": "cka", "center_gram": "cka", "cka_from_grams": "cka",
    "VariancePartition": "partition", "DomainTransfer": "transfer", "GroupFolds": "splitters",
    "fold_labels": "splitters", "run_probes": "driver", "PROBES": "layer_probes", "COLUMNS": "driver",
}

__all__ = list(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
