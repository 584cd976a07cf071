"""K-way softmax refinement: never worse than its start, no empty cluster, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.utils.estimator_checks import check_estimator

from softclust_gui.engine import HypersurfaceClustering, SoftmaxClustering, refine_kway


def _sse(X, labels):
    return sum(
        ((X[labels == j] - X[labels == j].mean(0)) ** 2).sum() for j in np.unique(labels)
    )


@pytest.fixture(scope="module")
def overlapping():
    # Eight blobs that touch: the greedy tree's cuts leave room for improvement.
    X, y = make_blobs(800, centers=8, cluster_std=2.0, random_state=1)
    return X, y


@pytest.mark.parametrize("surface", ["linear", "mlp"])
def test_refinement_never_raises_the_tree_sum_of_squares(overlapping, surface):
    X, _ = overlapping
    tree = HypersurfaceClustering(8, random_state=0, device="cpu").fit(X)
    result = refine_kway(X, tree.labels_, surface=surface, max_epochs=150)
    assert result.start_sse == pytest.approx(_sse(X, tree.labels_), rel=1e-4)
    assert result.sse == pytest.approx(_sse(X, result.labels), rel=1e-4)
    assert result.sse <= result.start_sse
    assert np.array_equal(np.unique(result.labels), np.arange(8))
    assert 1 <= result.n_epochs <= 150


def test_refinement_improves_a_poor_start_to_near_kmeans(overlapping):
    X, _ = overlapping
    # One Lloyd step from random centres: a deliberately poor but valid partition.
    start = KMeans(8, init="random", n_init=1, max_iter=1, random_state=3).fit(X).labels_
    result = refine_kway(X, start, max_epochs=150)
    best = KMeans(8, n_init=10, random_state=0).fit(X).inertia_
    assert result.sse < 0.97 * _sse(X, start)
    assert result.sse <= 1.05 * best
    model_labels = result.surface.assign(torch.tensor(X, dtype=torch.float32)).numpy()
    assert np.array_equal(model_labels, result.labels)


def test_refinement_keeps_a_tiny_cluster_alive():
    # A cluster of three far points beside two big blobs must survive the training.
    X, _ = make_blobs(600, centers=[[0, 0], [6, 0]], cluster_std=1.0, random_state=0)
    X = np.vstack([X, [[30, 30], [30.5, 30], [30, 30.5]]])
    start = np.r_[(X[:-3, 0] > 3).astype(int), [2, 2, 2]]
    result = refine_kway(X, start)
    assert np.bincount(result.labels, minlength=3).min() >= 1
    assert set(result.labels[-3:]) == {2}


def test_refinement_is_deterministic(overlapping):
    X, _ = overlapping
    start = KMeans(8, init="random", n_init=1, max_iter=1, random_state=3).fit(X).labels_
    first = refine_kway(X, start, surface="mlp", random_state=5, max_epochs=60)
    second = refine_kway(X, start, surface="mlp", random_state=5, max_epochs=60)
    assert np.array_equal(first.labels, second.labels)
    assert first.sse == second.sse


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.zeros(9, dtype=int), r"labels must have shape \(10,\), one per point of X; got "),
        (np.r_[0, 0, 2, 2, 2, 2, 2, 2, 2, 2], r"every value 0..K-1 with none missing; got "),
        (np.linspace(0, 1, 10), r"labels must be integers 0..K-1; got dtype float64"),
    ],
)
def test_bad_starting_labels_are_named(labels, match):
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match=match):
        refine_kway(X, labels)


def test_softmax_clustering_refines_the_tree(overlapping):
    X, _ = overlapping
    model = SoftmaxClustering(8, max_epochs=100, random_state=0, device="cpu").fit(X)
    assert model.labels_.shape == (len(X),) and model.n_clusters_ == 8
    assert model.inertia_ == pytest.approx(_sse(X, model.labels_), rel=1e-4)
    assert model.inertia_ <= _sse(X, model.start_labels_) * (1 + 1e-6)
    assert model.criterion_ == pytest.approx(2 * model.inertia_)
    # New points near the training points go where their neighbours went.
    shifted = X + 1e-3
    agreement = np.mean(model.predict(shifted) == model.labels_)
    assert agreement > 0.97
    again = SoftmaxClustering(8, max_epochs=100, random_state=0, device="cpu").fit(X)
    assert np.array_equal(again.labels_, model.labels_)


def test_softmax_clustering_passes_scikit_learn_estimator_checks():
    check_estimator(SoftmaxClustering(n_restarts=1, max_epochs=10, device="cpu"))
