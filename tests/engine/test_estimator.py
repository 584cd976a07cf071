"""HypersurfaceClustering as a scikit-learn estimator: API, tree, progress, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.utils.estimator_checks import check_estimator

from softclust_gui.engine import FitCancelled, FitProgress, HypersurfaceClustering, TreeNode


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(300, centers=4, cluster_std=0.6, random_state=0)
    return X, y


def test_passes_scikit_learn_estimator_checks():
    check_estimator(HypersurfaceClustering(n_restarts=1, max_epochs=30))


@pytest.mark.parametrize("surface", ["linear", "mlp"])
def test_tree_records_every_split(blobs, surface):
    X, _ = blobs
    model = HypersurfaceClustering(4, surface=surface, random_state=0).fit(X)
    tree = model.tree_
    assert all(isinstance(node, TreeNode) for node in tree)
    assert [node.node_id for node in tree] == list(range(len(tree))) and len(tree) == 7
    assert tree[0].parent is None and tree[0].size == len(X)
    leaves = [node for node in tree if not node.children]
    assert sorted(node.label for node in leaves) == [0, 1, 2, 3]
    for node in tree:
        assert node.size == len(node.members) > 0
        assert np.all(np.diff(node.members) > 0) and node.members.dtype == np.int64
        if node.children:
            c0, c1 = (tree[c] for c in node.children)
            assert c0.parent == c1.parent == node.node_id
            assert np.array_equal(np.union1d(c0.members, c1.members), node.members)
            assert node.label is None and node.surface is not None
            side = node.surface.assign(_tensor(X[node.members])).numpy()
            assert np.array_equal(node.members[side], c1.members)
        else:
            assert node.surface is None
            assert np.all(model.labels_[node.members] == node.label)
    sse = sum(
        ((X[model.labels_ == j] - X[model.labels_ == j].mean(0)) ** 2).sum() for j in range(4)
    )
    assert model.criterion_ == pytest.approx(2 * sse, rel=1e-4)
    assert model.criterion_ == pytest.approx(sum(n.criterion for n in leaves))
    assert model.n_clusters_ == 4 and model.n_features_in_ == 2


def _tensor(X):
    import torch

    return torch.tensor(X, dtype=torch.float32)


def test_predict_routes_training_and_new_points(blobs):
    X, _y = blobs
    model = HypersurfaceClustering(4, random_state=0).fit(X)
    assert np.array_equal(model.predict(X), model.labels_)
    jitter = X + np.random.default_rng(0).normal(0, 0.01, X.shape)
    assert (model.predict(jitter) == model.labels_).mean() > 0.98


def test_largest_partial_criterion_is_split_next():
    rng = np.random.default_rng(1)
    wide = rng.normal(0, 3.0, (200, 2))
    tight = rng.normal(0, 0.1, (200, 2)) + np.array([40.0, 0.0])
    X = np.vstack([wide, tight])
    model = HypersurfaceClustering(3, random_state=0).fit(X)
    root = model.tree_[0]
    first, second = (model.tree_[c] for c in root.children)
    wide_child = first if first.criterion > second.criterion else second
    assert wide_child.children, "the child with the larger partial criterion is split"
    assert np.all(np.isin(wide_child.members, np.arange(200)))


def test_same_seed_same_labels_on_cpu(blobs):
    X, _ = blobs
    for kw in ({}, {"criterion": "connected", "surface": "mlp"}):
        a = HypersurfaceClustering(4, random_state=3, device="cpu", **kw).fit_predict(X)
        b = HypersurfaceClustering(4, random_state=3, device="cpu", **kw).fit_predict(X)
        assert np.array_equal(a, b)


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "adagrad"])
def test_every_optimizer_and_mini_batches_work(blobs, optimizer):
    X, y = blobs
    from sklearn.metrics import adjusted_rand_score

    model = HypersurfaceClustering(4, optimizer=optimizer, batch_size=64, random_state=0)
    assert adjusted_rand_score(y, model.fit_predict(X)) > 0.95


def test_float64_duplicates_and_constant_features_work():
    rng = np.random.default_rng(2)
    base = np.vstack([rng.normal(0, 1, (30, 2)), rng.normal(8, 1, (30, 2))])
    X = np.hstack([np.repeat(base, 3, axis=0), np.full((180, 1), 7.0)]).astype(np.float64)
    labels = HypersurfaceClustering(2, random_state=0).fit_predict(X)
    assert sorted(np.bincount(labels)) == [90, 90]
    assert all(len(set(labels[i : i + 3])) == 1 for i in range(0, 180, 3))


def test_one_cluster_is_the_whole_set(blobs):
    X, _ = blobs
    model = HypersurfaceClustering(1).fit(X)
    assert model.n_clusters_ == 1 and len(model.tree_) == 1
    assert np.all(model.predict(X[:5]) == 0)


def test_fewer_distinct_points_than_clusters_is_refused():
    X = np.repeat([[0.0, 0.0], [1.0, 1.0]], 10, axis=0)
    with pytest.raises(
        ValueError,
        match=r"only 2 clusters could be formed, fewer than "
        r"n_clusters=3",
    ):
        HypersurfaceClustering(3, random_state=0).fit(X)


def test_refitting_a_subset_splits_one_cluster_further(blobs):
    X, _ = blobs
    model = HypersurfaceClustering(2, random_state=0).fit(X)
    members = model.tree_[1].members
    sub = HypersurfaceClustering(2, random_state=0).fit(X[members])
    assert sub.n_clusters_ == 2 and len(sub.labels_) == len(members)
    assert min(np.bincount(sub.labels_)) > 0.2 * len(members)


def test_progress_reaches_done_and_counts_splits(blobs):
    X, _ = blobs
    seen: list[FitProgress] = []
    HypersurfaceClustering(4, callback=seen.append, random_state=0).fit(X)
    assert seen[0].stage == "start" and seen[-1].stage == "done"
    assert {p.total for p in seen} == {3}
    assert [p.done for p in seen if p.stage == "split"] == sorted(
        p.done for p in seen if p.stage == "split"
    )
    assert seen[-1].done == 3 and all(p.message for p in seen)


@pytest.mark.parametrize("stop_at", ["start", "split"])
def test_cancelled_fit_raises_and_leaves_estimator_unfitted(blobs, stop_at):
    X, _ = blobs
    model = HypersurfaceClustering(4, callback=lambda p: p.stage == stop_at)
    with pytest.raises(FitCancelled, match=stop_at):
        model.fit(X)
    assert not [k for k in vars(model) if k.endswith("_")]


def test_cancel_during_a_refit_forgets_the_previous_fit(blobs):
    X, _ = blobs
    model = HypersurfaceClustering(2, random_state=0).fit(X)
    model.set_params(callback=lambda p: p.stage == "split")
    with pytest.raises(FitCancelled):
        model.fit(X)
    assert not hasattr(model, "labels_") and not hasattr(model, "tree_")


BAD_INPUTS = [
    (
        np.array([[0.0, np.nan], [1.0, 2.0], [np.inf, 1.0]]),
        2,
        r"X contains 1 NaN and 1 infinite \(inf\) values in 2 of 3 rows \(rows 0, 2\)",
    ),
    (
        np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]),
        5,
        r"X has 3 points, fewer than n_clusters=5",
    ),
    (np.array([[1.0, 2.0]]), 2, r"X has 1 sample \(a single point\)"),
    (np.ones((6, 3)), 2, r"all 6 points of X are identical"),
    (np.arange(5.0), 2, r"X must be a 2-D array .* got a 1-D array of shape \(5,\)"),
    ([["a", "b"], ["c", "d"]], 2, r"X must hold numbers only"),
    (np.empty((0, 3)), 2, r"X is empty: shape \(0, 3\)"),
    (np.empty((4, 0)), 2, r"X has 0 feature\(s\) \(shape=\(4, 0\)\)"),
]


@pytest.mark.parametrize(("X", "k", "message"), BAD_INPUTS)
def test_bad_input_is_refused_with_a_clear_message(X, k, message):
    with pytest.raises(ValueError, match=message):
        HypersurfaceClustering(k).fit(X)


@pytest.mark.parametrize("value", [0, -2])
def test_n_clusters_below_one_is_refused(value):
    with pytest.raises(
        ValueError,
        match=r"'n_clusters' parameter .* must be an int in the "
        rf"range \[1, inf\) or a str among {{'auto'}}\. Got {value}",
    ):
        HypersurfaceClustering(value).fit(np.eye(3))


def test_predict_checks_features(blobs):
    X, _ = blobs
    model = HypersurfaceClustering(2, random_state=0).fit(X)
    with pytest.raises(
        ValueError,
        match=r"X has 3 features, but HypersurfaceClustering is "
        r"expecting 2 features",
    ):
        model.predict(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.array([[np.nan, 0.0]]))


@pytest.mark.cuda
def test_cuda_fit_matches_cpu_on_separated_blobs(blobs):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    X, _ = blobs
    cpu = HypersurfaceClustering(4, device="cpu", random_state=0).fit(X)
    gpu = HypersurfaceClustering(4, device="cuda", random_state=0).fit(X)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(cpu.labels_, gpu.labels_) == 1.0
    assert np.array_equal(gpu.predict(X), gpu.labels_)


def test_unknown_device_or_optimizer_is_refused():
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match=r"'optimizer' parameter .* Got 'sgd' instead"):
        HypersurfaceClustering(optimizer="sgd").fit(X)
    with pytest.raises(ValueError, match=r"'device' parameter .* Got 'tpu' instead"):
        HypersurfaceClustering(device="tpu").fit(X)
