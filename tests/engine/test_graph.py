"""The neighbour graph and the spectral start, against brute force."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

from softclust_gui.engine import graph as graph_module
from softclust_gui.engine.graph import knn_graph, nearest_neighbours, spectral_split, sweep_cut


def test_blocked_neighbours_are_exact(monkeypatch):
    monkeypatch.setattr(graph_module, "_BLOCK_ELEMENTS", 700)  # many small blocks
    X = np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32)
    dist, index = nearest_neighbours(torch.from_numpy(X), 6)
    ref_dist, ref_index = NearestNeighbors(n_neighbors=7).fit(X).kneighbors(X)
    assert np.allclose(dist.numpy(), ref_dist[:, 1:], atol=1e-4)
    assert (index.numpy() == ref_index[:, 1:]).mean() > 0.99  # ties may reorder


def test_graph_is_symmetric_sparse_and_keeps_every_neighbour():
    X = np.random.default_rng(1).normal(size=(200, 3)).astype(np.float32)
    g = knn_graph(torch.from_numpy(X), 8)
    W = g.to_scipy()
    assert abs(W - W.T).max() < 1e-7
    assert W.nnz <= 2 * 8 * 200
    assert ((W > 0).sum(axis=1) >= 8).all()
    assert np.allclose(np.asarray(W.sum(axis=1)).ravel(), g.degree.numpy(), rtol=1e-5)


def test_duplicate_points_give_finite_weights():
    X = np.repeat(np.random.default_rng(2).normal(size=(20, 2)), 5, axis=0)
    g = knn_graph(torch.tensor(X, dtype=torch.float32), 6)
    assert torch.isfinite(g.weight).all() and (g.weight > 0).all()


def test_sweep_finds_the_lowest_normalised_cut_of_all_thresholds():
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(0, 1, (40, 2)), rng.normal(3, 1, (40, 2))]).astype(np.float32)
    g = knn_graph(torch.from_numpy(X), 6)
    W = g.to_scipy().toarray()
    deg = W.sum(1)
    score = rng.normal(size=80)
    side = sweep_cut(g.to_scipy(), deg, score, eps=0.0)

    def ncut(s):
        cut = W[s][:, ~s].sum()
        return cut / deg[s].sum() + cut / deg[~s].sum()

    order = np.argsort(score)
    brute = min(ncut(np.isin(np.arange(80), order[i + 1 :])) for i in range(79))
    assert ncut(side) == np.float64(brute) or abs(ncut(side) - brute) < 1e-9


def test_graph_in_pieces_is_split_between_pieces_evenly():
    rng = np.random.default_rng(4)
    blobs = [rng.normal(c, 0.05, (n, 2)) for c, n in ((0, 30), (10, 30), (20, 25), (30, 25))]
    X = np.vstack(blobs).astype(np.float32)
    g = knn_graph(torch.from_numpy(X), 5)
    side = spectral_split(g, np.random.RandomState(0))
    pieces = np.repeat(np.arange(4), [30, 30, 25, 25])
    for p in range(4):  # no piece is cut
        assert len(set(side[pieces == p])) == 1
    assert side.sum() == 55  # 30 + 25 points on each side


def test_two_rings_spectral_start_separates_them():
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    inner = np.c_[np.cos(t), np.sin(t)]
    X = np.vstack([inner, 3 * inner]).astype(np.float32)
    g = knn_graph(torch.from_numpy(X), 8)
    side = spectral_split(g, np.random.RandomState(0))
    assert len(set(side[:200])) == 1 and len(set(side[200:])) == 1 and side[0] != side[-1]


def test_fiedler_vector_of_small_graphs_is_exact():
    import scipy.sparse as sp

    # Two joined vertices left ARPACK with a zero start ("ARPACK error -9").
    pair = sp.csr_matrix(np.array([[0.0, 0.368], [0.368, 0.0]]))
    vector = graph_module._fiedler_vector(pair, np.array([0.368, 0.368]), np.random)
    assert vector.shape == (2,) and np.isfinite(vector).all()

    # A path of 150 vertices: the Fiedler vector is monotone along it, split in the middle.
    n = 150
    W = sp.diags([np.ones(n - 1), np.ones(n - 1)], [-1, 1], format="csr")
    degree = np.asarray(W.sum(axis=1)).ravel()
    score = graph_module._fiedler_vector(W, degree, np.random.RandomState(0)) / np.sqrt(degree)
    assert len(set(np.sign(np.diff(score)))) == 1  # monotone along the path
    side = sweep_cut(W, degree, score, 1e-9)
    assert side.sum() == n // 2 and len(set(side[: n // 2])) == 1


def test_dense_and_iterative_fiedler_vectors_agree(monkeypatch):
    rng = np.random.default_rng(5)
    X = np.vstack([rng.normal(0, 1, (120, 2)), rng.normal(4, 1, (120, 2))]).astype(np.float32)
    W = knn_graph(torch.from_numpy(X), 8).to_scipy()
    degree = np.asarray(W.sum(axis=1)).ravel()
    dense = graph_module._fiedler_vector(W, degree, np.random.RandomState(0))
    monkeypatch.setattr(graph_module, "_DENSE_EIGEN_MAX", 10)
    iterative = graph_module._fiedler_vector(W, degree, np.random.RandomState(0))
    assert abs(float(dense @ iterative)) > 0.999  # the same unit vector, up to its sign
