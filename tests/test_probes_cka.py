"""CKA: self-similarity, invariances, and the debiased index against the U-statistic definition of HSIC."""
from __future__ import annotations

from itertools import permutations

import numpy as np
import pytest
from scipy.stats import ortho_group

from audioprobe.errors import ParameterError
from audioprobe.probes.cka import center_gram, cka_from_grams, gram_linear, linear_cka


def _hsic_u_statistic(K, L):
    """Unbiased HSIC as the average over ordered distinct quadruples (Song et al. 2012, eq. 4)."""
    n = len(K)
    total = sum(K[i, j] * L[i, j] + K[i, j] * L[q, r] - 2 * K[i, j] * L[i, q]
                for i, j, q, r in permutations(range(n), 4))
    return total / (n * (n - 1) * (n - 2) * (n - 3))


@pytest.mark.parametrize("debiased", [False, True])
def test_self_similarity_and_invariances(debiased):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 8)) @ rng.normal(size=(8, 8))
    Y = X[:, :5] + rng.normal(size=(30, 5))
    assert linear_cka(X, X, debiased=debiased) == pytest.approx(1.0, abs=1e-12)
    reference = linear_cka(X, Y, debiased=debiased)
    Q = ortho_group.rvs(8, random_state=1)
    assert linear_cka(X @ Q, Y, debiased=debiased) == pytest.approx(reference, abs=1e-10)
    assert linear_cka(7.5 * X, 0.01 * Y, debiased=debiased) == pytest.approx(reference, abs=1e-10)
    assert linear_cka(X + 100.0, Y - 3.0, debiased=debiased) == pytest.approx(reference, abs=1e-10)
    assert linear_cka(Y, X, debiased=debiased) == pytest.approx(reference, abs=1e-12)
    anisotropic = X * np.linspace(1, 5, 8)
    assert abs(linear_cka(anisotropic, Y, debiased=debiased) - reference) > 1e-3  # not invariant to this


def test_plain_cka_equals_feature_space_formula():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(25, 40)), rng.normal(size=(25, 6))
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    expected = np.linalg.norm(Yc.T @ Xc) ** 2 / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc))
    assert linear_cka(X, Y) == pytest.approx(expected, abs=1e-12)


def test_debiased_cka_equals_u_statistic_hsic():
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    K, L = X @ X.T, Y @ Y.T
    n = len(K)
    hsic = np.vdot(center_gram(K, debiased=True), center_gram(L, debiased=True)) / (n * (n - 3))
    assert hsic == pytest.approx(_hsic_u_statistic(K, L), rel=1e-10)
    expected = _hsic_u_statistic(K, L) / np.sqrt(_hsic_u_statistic(K, K) * _hsic_u_statistic(L, L))
    assert cka_from_grams(K, L, debiased=True) == pytest.approx(expected, rel=1e-10)


def test_debiasing_removes_the_width_bias_of_independent_representations():
    rng = np.random.default_rng(4)
    plain, debiased = [], []
    for _ in range(20):
        X, Y = rng.normal(size=(20, 500)), rng.normal(size=(20, 500))
        plain.append(linear_cka(X, Y))
        debiased.append(linear_cka(X, Y, debiased=True))
    assert np.mean(plain) > 0.5
    assert abs(np.mean(debiased)) < 0.02


def test_bad_input():
    with pytest.raises(ParameterError, match="same clips"):
        cka_from_grams(np.eye(4), np.eye(5))
    with pytest.raises(ParameterError, match="one row per clip"):
        linear_cka(np.ones((4, 2)), np.ones((5, 2)))
    with pytest.raises(ParameterError, match="at least 4 clips"):
        center_gram(np.eye(3), debiased=True)
    assert np.isnan(linear_cka(np.ones((6, 3)), np.random.default_rng(0).normal(size=(6, 2))))
    assert gram_linear(np.ones((3, 2))).shape == (3, 3)


def test_representation_that_varies_by_float_noise_gives_nan():
    rng = np.random.default_rng(12)
    X = rng.normal(size=(40, 6))
    residue = 3.0 + 1e-12 * rng.normal(size=(40, 2))  # a descriptor set that is constant up to rounding
    K = (X - X.mean(axis=0)) @ (X - X.mean(axis=0)).T
    R = residue - residue.mean(axis=0)
    before = np.vdot(center_gram(K), center_gram(R @ R.T)) / np.sqrt(
        np.vdot(center_gram(K), center_gram(K)) * np.vdot(center_gram(R @ R.T), center_gram(R @ R.T)))
    assert np.isfinite(before) and before > 0  # the alignment of rounding residue, without the rule
    for debiased in (False, True):
        assert np.isnan(linear_cka(X, residue, debiased=debiased))
        assert np.isnan(cka_from_grams(gram_linear(X), gram_linear(residue), debiased=debiased))
    np.testing.assert_array_equal(gram_linear(residue), 0.0)
    Y = X @ rng.normal(size=(6, 3)) + rng.normal(size=(40, 3))
    assert linear_cka(X, 1e-9 * Y) == pytest.approx(linear_cka(X, Y), abs=1e-12)  # small but genuine: kept
