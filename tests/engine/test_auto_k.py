"""The split test behind n_clusters="auto": one blob stays whole, separated blobs split."""

from __future__ import annotations

import numpy as np
import pytest

from softclust_gui.engine._auto_k import MIN_FOLD, assess_split, split_ratio


def _blobs(rng, centres, n, d):
    return np.vstack([rng.normal(size=(n, d)) + c for c in centres])


def test_split_ratio_matches_the_reference_laws():
    rng = np.random.default_rng(0)
    assert split_ratio(rng.random(50_000)) == pytest.approx(0.25, abs=0.01)
    assert split_ratio(rng.normal(size=50_000)) == pytest.approx(1 - 2 / np.pi, abs=0.01)
    two_points = split_ratio(np.r_[np.zeros(50), np.ones(50)])
    assert two_points == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(split_ratio(np.full(20, 3.0)))


@pytest.mark.parametrize(("n", "d"), [(400, 2), (300, 128), (4000, 16)])
def test_one_gaussian_blob_is_not_split(n, d):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, d))
    side = X[:, 0] + X[:, 1] > 0  # the cut a 2-means would make, in any direction
    result = assess_split(X, side)
    assert not result.accepted and result.p_value > 0.01
    assert result.n_tested == min(n // 2, 4096)


def test_one_uniform_square_is_not_split():
    # A flat (non-Gaussian) cluster: Gaussianity tests split it, a unimodality test not.
    X = np.random.default_rng(2).random((3000, 2))
    assert not assess_split(X, X[:, 0] > 0.5).accepted


@pytest.mark.parametrize("d", [2, 128])
def test_two_separated_blobs_are_split(d):
    rng = np.random.default_rng(3)
    centres = np.zeros((2, d))
    centres[1, 0] = 6.0
    X = _blobs(rng, centres, 150, d)
    result = assess_split(X, X[:, 0] > 3.0)
    assert result.accepted and result.p_value < 1e-6 and result.ratio < 0.15


def test_a_split_off_outlier_is_not_confirmed():
    rng = np.random.default_rng(4)
    X = np.vstack([rng.normal(size=(300, 5)), [[40.0, 0, 0, 0, 0]]])
    side = np.zeros(len(X), dtype=bool)
    side[-1] = True
    assert not assess_split(X, side).accepted


def test_small_nodes_and_duplicates_are_handled():
    tiny = np.array([[0.0, 0.0]] * 5 + [[10.0, 10.0]] * 5)
    small = assess_split(tiny, np.arange(10) >= 5)
    assert not small.accepted and "too few" in small.reason and small.n_tested < MIN_FOLD
    # Many exact duplicates in two far places: two modes.
    duplicated = np.array([[0.0, 0.0]] * 100 + [[10.0, 10.0]] * 100)
    assert assess_split(duplicated, np.arange(200) >= 100).accepted
    # All points identical along the split: nothing to test, no split.
    same = np.ones((100, 3))
    assert not assess_split(same, np.arange(100) % 2 == 0).accepted


def test_the_test_is_deterministic_and_checks_its_input():
    rng = np.random.default_rng(5)
    X = _blobs(rng, [[0, 0], [3.5, 0]], 200, 2)
    side = X[:, 0] > 1.75
    assert assess_split(X, side, random_state=7) == assess_split(X, side, random_state=7)
    with pytest.raises(ValueError, match=r"side has 399 entries but x has 400 points"):
        assess_split(X, side[:-1])


def _auto(**params):
    from softclust_gui.engine import HypersurfaceClustering

    return HypersurfaceClustering("auto", device="cpu", random_state=0, **params)


def test_auto_finds_one_cluster_in_one_blob():
    X = np.random.default_rng(6).normal(size=(600, 3))
    model = _auto().fit(X)
    assert model.n_clusters_ == 1 and len(model.tree_) == 1
    assert np.all(model.labels_ == 0) and np.all(model.predict(X[:10]) == 0)
    assert not model.split_tests_[0].accepted


def test_auto_finds_four_well_separated_blobs():
    from sklearn.datasets import make_blobs
    from sklearn.metrics import adjusted_rand_score

    centres = [[0, 0], [10, 0], [0, 10], [10, 10]]
    X, y = make_blobs(800, centers=centres, random_state=0)
    model = _auto().fit(X)
    assert model.n_clusters_ == 4
    assert adjusted_rand_score(y, model.labels_) == 1.0
    internal = [node.node_id for node in model.tree_ if node.children]
    leaves = [node.node_id for node in model.tree_ if not node.children]
    assert all(model.split_tests_[i].accepted for i in internal)
    tests = model.split_tests_
    assert all(i not in tests or not tests[i].accepted for i in leaves)
    again = _auto().fit(X)
    assert np.array_equal(again.labels_, model.labels_)


def test_auto_stays_within_max_clusters_and_matches_the_fixed_k_tree():
    from sklearn.datasets import make_blobs

    from softclust_gui.engine import HypersurfaceClustering

    X, _ = make_blobs(900, centers=9, cluster_std=0.3, center_box=(-40, 40), random_state=2)
    model = _auto(max_clusters=3).fit(X)
    assert model.n_clusters_ == 3
    # Every split was supported, so the tree is the fixed-K tree itself.
    fixed = HypersurfaceClustering(3, device="cpu", random_state=0).fit(X)
    assert np.array_equal(fixed.labels_, model.labels_)


def test_auto_rejects_a_bad_bound():
    X = np.random.default_rng(7).normal(size=(50, 2))
    with pytest.raises(
        ValueError, match=r"max_clusters.*must be an int in the range \[1, inf\)"
    ):
        _auto(max_clusters=0).fit(X)


def test_cut_tree_keeps_a_flat_looking_split_above_supported_ones():
    from softclust_gui.engine import TreeNode
    from softclust_gui.engine._auto_k import SplitTest, cut_tree

    def node(i, parent, children, members):
        members = np.asarray(members, dtype=np.int64)
        return TreeNode(i, parent, children, members, len(members), 1.0, surface=object())

    # 0 -> (1, 2); 1 -> (3, 4); 2 -> (5, 6); 4 -> (7, 8)
    nodes = [
        node(0, None, (1, 2), range(8)),
        node(1, 0, (3, 4), range(4)),
        node(2, 0, (5, 6), range(4, 8)),
        node(3, 1, (), [0]),
        node(4, 1, (7, 8), [1, 2, 3]),
        node(5, 2, (), [4, 5]),
        node(6, 2, (), [6, 7]),
        node(7, 4, (), [1]),
        node(8, 4, (), [2, 3]),
    ]
    yes = SplitTest(True, 1e-9, 0.05, 100, "")
    no = SplitTest(False, 1.0, 0.35, 100, "")
    # The root looks flat, but node 1's split is supported; nothing below 2 and 4 is.
    cut, tests = cut_tree(nodes, {0: no, 1: yes, 2: no, 4: no})
    assert [(n.node_id, n.parent, n.children) for n in cut] == [
        (0, None, (1, 2)),
        (1, 0, (3, 4)),
        (2, 0, ()),
        (3, 1, ()),
        (4, 1, ()),
    ]
    assert [n.label for n in cut] == [None, None, 2, 0, 1]
    assert cut[2].surface is None and cut[4].surface is None and cut[1].surface is not None
    assert list(cut[4].members) == [1, 2, 3]
    assert tests == {0: no, 1: yes, 2: no, 4: no}
    # Nothing supported anywhere: the root alone.
    alone, _ = cut_tree(nodes, {})
    assert len(alone) == 1 and alone[0].label == 0 and alone[0].children == ()


# -- the graph coordinate (connected criterion) -----------------------------------------


def _ring(rng, n, radius, width=0.05):
    angle = rng.random(n) * 2 * np.pi
    r = radius + width * rng.normal(size=n)
    return np.c_[r * np.cos(angle), r * np.sin(angle)]


def _graph(X):
    import torch

    from softclust_gui.engine.graph import knn_graph

    return knn_graph(torch.from_numpy(X).float(), 10)


def test_a_ring_cut_in_half_is_one_cluster_along_the_graph():
    # Projected on a straight line a ring looks bimodal (two arcs seen edge-on); along the
    # ring itself the points are spread evenly, so the graph coordinate keeps it whole.
    X = _ring(np.random.default_rng(8), 1500, 1.0)
    side = X[:, 1] > 0
    assert assess_split(X, side).accepted
    along_graph = assess_split(X, side, graph=_graph(X))
    assert not along_graph.accepted and along_graph.p_value > 0.01


def test_nested_rings_are_two_clusters_along_the_graph():
    # No straight direction separates a ring from the ring around it; the graph does.
    rng = np.random.default_rng(9)
    X = np.vstack([_ring(rng, 600, 1.0), _ring(rng, 900, 3.0)])
    side = np.arange(len(X)) >= 600
    assert not assess_split(X, side).accepted
    along_graph = assess_split(X, side, graph=_graph(X))
    assert along_graph.accepted and along_graph.p_value < 1e-6


def test_a_high_dimensional_blob_falls_back_to_the_straight_direction():
    # In 128 dimensions every neighbour is about as far as any other: graph distances come
    # in whole hops, too coarse to test, so the straight direction decides.
    X = np.random.default_rng(10).normal(size=(600, 128))
    side = X[:, 0] > 0
    assert assess_split(X, side, graph=_graph(X)) == assess_split(X, side)


def test_auto_connected_finds_nested_rings_and_keeps_one_ring_whole():
    rng = np.random.default_rng(11)
    one = _ring(rng, 800, 1.0)
    assert _auto(criterion="connected", surface="mlp").fit(one).n_clusters_ == 1
    nested = np.vstack([_ring(rng, 500, 1.0), _ring(rng, 700, 2.5)])
    model = _auto(criterion="connected", surface="mlp").fit(nested)
    assert model.n_clusters_ == 2
    assert len(np.unique(model.labels_[:500])) == 1
    assert len(np.unique(model.labels_[500:])) == 1


# -- the valley at the cut --------------------------------------------------------------


def test_the_valley_test_keeps_unimodal_laws_and_finds_a_gap():
    from softclust_gui.engine._auto_k import valley_p_value

    rng = np.random.default_rng(13)
    assert valley_p_value(rng.random(2000), 0.5) > 0.05  # flat, cut in the middle
    assert valley_p_value(rng.normal(size=2000), 1.0) > 0.05  # cut on a slope
    assert valley_p_value(np.sqrt(rng.random(2000)), 0.5) > 0.05  # a ramp
    values = rng.random(2000)
    gapped = values[np.abs(values - 0.5) > 0.02]
    assert valley_p_value(gapped, 0.5) < 1e-6
    # The valley is looked for at the cut only: a gap elsewhere is not one.
    assert valley_p_value(gapped, 0.3) > 0.05
    assert valley_p_value(np.full(50, 2.0), 2.0) == 1.0


def test_a_dense_and_a_sparse_band_with_a_gap_are_split():
    # A dense band and a sparse one end to end, 0.8 apart: the mixture is a step down
    # (unimodal, R near 1/4), so only the empty valley at the cut shows two clusters.
    from softclust_gui.engine._auto_k import _null_p_value

    rng = np.random.default_rng(15)
    dense = np.c_[rng.random(1200) * 4.6, rng.random(1200)]
    sparse = np.c_[5.4 + rng.random(400) * 4.6, rng.random(400)]
    X = np.vstack([dense, sparse])
    result = assess_split(X, X[:, 0] > 5)
    assert _null_p_value(result.ratio, result.n_tested) > 0.05
    assert result.accepted and result.p_value < 1e-6
    # The same two bands without the gap: a step, one cluster.
    joined = np.vstack([dense * [5 / 4.6, 1], sparse - [0.4, 0]])
    assert not assess_split(joined, joined[:, 0] > 5).accepted
