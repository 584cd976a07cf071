"""What the engine finds on data with a known answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import BisectingKMeans
from sklearn.datasets import make_blobs, make_circles, make_moons
from sklearn.metrics import adjusted_rand_score

from softclust_gui.engine import CompactCriterion, HypersurfaceClustering
from softclust_gui.engine.criteria import NodeData
from softclust_gui.engine.split import SplitSettings, split_node


def _sse(X, labels):
    return sum(
        ((X[labels == j] - X[labels == j].mean(0)) ** 2).sum() for j in np.unique(labels)
    )


def test_compact_matches_or_beats_bisecting_kmeans_sum_of_squares():
    X, y = make_blobs(3000, n_features=16, centers=8, cluster_std=2.0, random_state=1)
    ours = HypersurfaceClustering(8, random_state=0).fit(X)
    theirs = BisectingKMeans(8, random_state=0).fit(X)
    assert _sse(X, ours.labels_) <= _sse(X, theirs.labels_) * 1.001
    assert adjusted_rand_score(y, ours.labels_) > 0.9


@pytest.mark.parametrize(
    "make",
    [
        lambda: make_moons(600, noise=0.06, random_state=0),
        lambda: make_circles(600, noise=0.04, factor=0.45, random_state=0),
    ],
    ids=["moons", "circles"],
)
def test_connected_mlp_finds_curved_clusters(make):
    X, y = make()
    labels = HypersurfaceClustering(
        2, criterion="connected", surface="mlp", random_state=0
    ).fit_predict(X)
    assert adjusted_rand_score(y, labels) > 0.95
    compact = HypersurfaceClustering(2, random_state=0).fit_predict(X)
    assert adjusted_rand_score(y, compact) < 0.5  # a flat cut cannot do this


def test_connected_mlp_surface_generalises_to_new_points():
    X, _y = make_moons(600, noise=0.06, random_state=0)
    model = HypersurfaceClustering(2, criterion="connected", surface="mlp", random_state=0).fit(
        X
    )
    X_new, y_new = make_moons(300, noise=0.06, random_state=1)
    assert adjusted_rand_score(y_new, model.predict(X_new)) > 0.9


def test_connected_three_separated_groups_and_criterion_value():
    X, y = make_blobs(450, centers=[[0, 0], [10, 0], [0, 10]], cluster_std=0.5, random_state=2)
    model = HypersurfaceClustering(3, criterion="connected", surface="mlp", random_state=0).fit(
        X
    )
    assert adjusted_rand_score(y, model.labels_) == 1.0
    assert model.criterion_ == pytest.approx(0.0, abs=1e-6)  # no edge crosses clusters


class _OneSidedFirst(CompactCriterion):
    def start(self, node, restart, rng):
        if restart == 0:
            return np.ones(len(node), dtype=bool)
        return super().start(node, restart, rng)


def test_one_sided_start_is_retried_and_never_gives_an_empty_side():
    X, _ = make_blobs(200, centers=2, random_state=3)
    node = NodeData.from_members(
        torch.tensor(X, dtype=torch.float32), np.arange(200, dtype=np.int64)
    )
    result = split_node(
        node,
        _OneSidedFirst(),
        SplitSettings(n_restarts=2),
        torch.Generator().manual_seed(0),
        np.random.RandomState(0),
    )
    assert result is not None and result.restart == 1
    assert 0 < result.side.sum() < 200


def test_best_restart_by_hard_criterion_is_kept():
    X, _ = make_blobs(400, centers=5, n_features=3, random_state=4)
    node = NodeData.from_members(
        torch.tensor(X, dtype=torch.float32), np.arange(400, dtype=np.int64)
    )
    crit = CompactCriterion()
    scores = []
    for n in (1, 4):
        r = split_node(
            node,
            crit,
            SplitSettings(n_restarts=n),
            torch.Generator().manual_seed(0),
            np.random.RandomState(0),
        )
        scores.append(r.score)
        assert r.score == pytest.approx(sum(r.terms))
        side = torch.from_numpy(r.side)
        assert r.score == pytest.approx(sum(crit.hard_terms(node, side)))
    assert scores[1] <= scores[0]
