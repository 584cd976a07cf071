"""The criteria against their textbook formulas, on small random data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from softclust_gui.engine import CompactCriterion, ConnectedCriterion, HypersurfaceClustering
from softclust_gui.engine.criteria import NodeData, TermCriterion


def _node(X):
    source = torch.tensor(X, dtype=torch.float32)
    return NodeData.from_members(source, np.arange(len(X), dtype=np.int64))


def _pairwise_soft_criterion(X, k):
    """The paper's SCR: sum over both clusters of (1/sum a) sum_{q,r} a_q a_r |x_q-x_r|^2."""
    d2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    total = 0.0
    for a in (k, 1.0 - k):
        total += (a[:, None] * a[None, :] * d2).sum() / a.sum()
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compact_soft_term_equals_pairwise_formula(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(3.0, 2.0, (40, 5))
    k = rng.uniform(0, 1, 40)
    node = _node(X)
    crit = CompactCriterion()
    a = torch.tensor(k, dtype=torch.float32)
    soft = float(crit.term(node, a) + crit.term(node, 1 - a))
    assert soft == pytest.approx(_pairwise_soft_criterion(X, k), rel=1e-4)


def test_compact_hard_memberships_give_twice_the_kmeans_sum_of_squares():
    rng = np.random.default_rng(3)
    X = rng.normal(0.0, 1.0, (60, 4))
    side = rng.uniform(size=60) < 0.4
    sse = sum(((X[m] - X[m].mean(0)) ** 2).sum() for m in (side, ~side))
    node = _node(X)
    crit = CompactCriterion()
    terms = crit.hard_terms(node, torch.from_numpy(side))
    assert sum(terms) == pytest.approx(2 * sse, rel=1e-5)
    a = torch.from_numpy(side.astype(np.float32))
    assert float(crit.term(node, a) + crit.term(node, 1 - a)) == pytest.approx(
        2 * sse, rel=1e-4
    )
    assert _pairwise_soft_criterion(X, side.astype(float)) == pytest.approx(2 * sse, rel=1e-9)


def test_compact_node_value_is_twice_the_sum_of_squares_in_data_units():
    rng = np.random.default_rng(4)
    X = rng.normal(1000.0, 0.01, (50, 3))  # far from the origin: one-pass sums would cancel
    node = _node(X)
    members = np.arange(10, 30)
    sse = ((X[members] - X[members].mean(0)) ** 2).sum()
    assert CompactCriterion().node_value(node, members) == pytest.approx(2 * sse, rel=1e-3)


def test_connected_soft_term_equals_dense_normalised_cut():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(30, 2))
    node = _node(X)
    crit = ConnectedCriterion()
    crit.prepare(node, n_neighbors=5)
    W = node.cache["graph"].to_scipy().toarray()
    assert np.allclose(W, W.T)
    k = rng.uniform(size=30)
    a = torch.tensor(k, dtype=torch.float32)
    deg = W.sum(1)
    expected = sum(
        (a_[:, None] * (1 - a_)[None, :] * W).sum() / (deg * a_).sum() for a_ in (k, 1 - k)
    )
    got = float(crit.term(node, a) + crit.term(node, 1 - a))
    assert got == pytest.approx(expected, rel=1e-4)


def test_user_term_function_is_minimised_end_to_end():
    def spread(x, a):
        mean = (a[:, None] * x).sum(0) / a.sum().clamp_min(1e-12)
        return (a * (x - mean).norm(dim=1)).sum()

    rng = np.random.default_rng(6)
    X = np.vstack([rng.normal(0, 0.3, (60, 2)), rng.normal(5, 0.3, (60, 2))])
    model = HypersurfaceClustering(2, criterion=spread, random_state=0).fit(X)
    assert sorted(np.bincount(model.labels_)) == [60, 60]
    expected = sum(
        float(spread(torch.tensor(X[m], dtype=torch.float32), torch.ones(int(m.sum()))))
        for m in (model.labels_ == 0, model.labels_ == 1)
    )
    assert model.criterion_ == pytest.approx(expected, rel=1e-4)
    assert isinstance(model.tree_[0].criterion, float)


def test_user_criterion_subclass_is_used():
    class CountingCompact(CompactCriterion):
        calls = 0

        def term(self, node, a, index=None):
            CountingCompact.calls += 1
            return super().term(node, a, index)

    X = np.random.default_rng(7).normal(size=(80, 3))
    HypersurfaceClustering(3, criterion=CountingCompact(), random_state=0).fit(X)
    assert CountingCompact.calls > 0


def test_term_criterion_rejects_nothing_callable():
    crit = TermCriterion(lambda x, a: a.sum())
    assert crit.name == "<lambda>"
