"""Clustering criteria made of per-cluster terms, and their softened forms.

A criterion is CR = sum over clusters j of f(X, a_j), where a_j holds the membership of
every point in cluster j: 0/1 for a hard partition, k(x) or 1 - k(x) for the two sides of
a soft split. Any f that is smooth in a can be minimised by gradient descent over the
surface's parameters; this is the paper's softening, and the extension point for new
criteria (see :class:`ClusterCriterion` and :class:`TermCriterion`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .graph import Graph, knn_graph, spectral_split

_CHUNK = 65536


@dataclass
class NodeData:
    """The points of one tree node, as the criteria and the split see them.

    Attributes
    ----------
    source : torch.Tensor, shape (n, d)
        All points of the fit, float32, on the fit's device.
    members : np.ndarray of int64, shape (m,)
        The node's rows of ``source``.
    z : torch.Tensor, shape (m, d)
        The node's points standardised: (x - offset) / scale.
    offset : torch.Tensor, shape (d,)
        The node's mean.
    scale : float
        The node's common standard deviation (one number for all features).
    cache : dict
        Per-node state a criterion keeps, such as its neighbour graph.
    """

    source: torch.Tensor
    members: np.ndarray
    z: torch.Tensor
    offset: torch.Tensor
    scale: float
    cache: dict = field(default_factory=dict)

    @classmethod
    def from_members(cls, source: torch.Tensor, members: np.ndarray) -> NodeData:
        if len(members) == len(source):
            z = source.clone()
        else:
            z = source[torch.from_numpy(members).to(source.device)]
        offset = z.mean(0)
        z -= offset
        scale = float(torch.linalg.vector_norm(z)) / max(1, z.numel()) ** 0.5
        if scale > 0:
            z /= scale
        return cls(source, members, z, offset, scale)

    @property
    def x(self) -> torch.Tensor:
        """The node's points in the units of X, shape (m, d) (a copy, made on demand)."""
        return self.z * self.scale + self.offset

    def __len__(self) -> int:
        return len(self.members)


class ClusterCriterion:
    """Base class of criteria made of per-cluster terms: CR = sum_j term(node, a_j).

    Subclass it and implement :meth:`term`; the rest has defaults that fit most criteria.
    Lower is better. The engine minimises term(node, k) + term(node, 1 - k) over the
    parameters of the surface k, so ``term`` must be differentiable in ``a`` (torch ops).

    Examples
    --------
    Sum of distances (not squared) to the cluster mean, less swayed by outliers than the
    sum of squares::

        class SumOfDistances(ClusterCriterion):
            name = "distances"

            def term(self, node, a, index=None):
                x = node.z if index is None else node.z[index]
                mean = (a[:, None] * x).sum(0) / a.sum().clamp_min(1e-12)
                return node.scale * (a * (x - mean).norm(dim=1)).sum()

        HypersurfaceClustering(n_clusters=4, criterion=SumOfDistances())
    """

    name = "custom"
    #: True when the split priority needs the candidate split of every leaf.
    priority_from_split = False

    def term(self, node: NodeData, a: torch.Tensor, index=None) -> torch.Tensor:
        """The term of one cluster with memberships a (shape (m,), or (len(index),)).

        ``index`` (a tensor of node positions) restricts the term to a mini-batch.
        """
        raise NotImplementedError

    def soft_criterion(self, node: NodeData, a: torch.Tensor, index=None) -> torch.Tensor:
        """The softened criterion of a split: term(a) + term(1 - a) (override to fuse)."""
        return self.term(node, a, index) + self.term(node, 1.0 - a, index)

    def prepare(self, node: NodeData, n_neighbors: int) -> None:
        """Build any per-node state (kept in ``node.cache``) before the node is split."""

    def start(self, node: NodeData, restart: int, rng: np.random.RandomState):
        """A starting partition for one restart: a bool array (m,), True for side 1."""
        return two_means_start(node.z, restart, rng)

    def loss_scale(self, node: NodeData) -> float:
        """A positive number of the size of the criterion, to make the loss O(1)."""
        with torch.no_grad():
            ones = torch.ones(len(node), device=node.z.device)
            value = abs(float(self.term(node, ones)))
        return value if value > 0 else 1.0

    def hard_terms(self, node: NodeData, side: torch.Tensor) -> tuple[float, float]:
        """The terms of sides 0 and 1 of a hard split (``side``: bool tensor (m,))."""
        with torch.no_grad():
            one = side.to(node.z.dtype)
            return float(self.term(node, 1.0 - one)), float(self.term(node, one))

    def split_score(self, node: NodeData, side: torch.Tensor, terms) -> float:
        """What picks the best of several candidate splits of a node (lower is better)."""
        return float(sum(terms))

    def node_value(self, root: NodeData, members: np.ndarray) -> float:
        """The partial criterion of the cluster ``members`` as one cluster of the fit."""
        a = torch.zeros(len(root), device=root.z.device)
        a[torch.from_numpy(members).to(root.z.device)] = 1.0
        with torch.no_grad():
            return float(self.term(root, a))

    def child_value(self, root: NodeData, members: np.ndarray, split, side: int) -> float:
        """The partial criterion of child ``side`` (0 or 1) of ``split``."""
        return self.node_value(root, members)

    def priority(self, value: float, split) -> float:
        """Which leaf to split next: the largest priority. The paper's rule: its value."""
        return value


class TermCriterion(ClusterCriterion):
    """A criterion from a plain function ``term(x, a) -> scalar tensor``.

    ``x`` is a float32 tensor (m, d) of points in the units of X and ``a`` their
    memberships (m,) in [0, 1]; the function must use torch operations.

    Examples
    --------
    >>> def spread(x, a):
    ...     mean = (a[:, None] * x).sum(0) / a.sum().clamp_min(1e-12)
    ...     return (a * (x - mean).norm(dim=1)).sum()
    >>> model = HypersurfaceClustering(n_clusters=3, criterion=spread)  # doctest: +SKIP
    """

    def __init__(self, function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        self.function = function
        self.name = getattr(function, "__name__", "custom")

    def term(self, node, a, index=None):
        x = node.x if index is None else node.x[index]
        return self.function(x, a)

    def node_value(self, root, members):
        x = root.source[torch.from_numpy(members).to(root.source.device)]
        with torch.no_grad():
            return float(self.function(x, torch.ones(len(x), device=x.device)))


class CompactCriterion(ClusterCriterion):
    """The paper's criterion: (1 / sum a) sum_{q,r} a_q a_r |x_q - x_r|^2 per cluster.

    Computed in O(m d) through the identity (1/A) sum_{q,r} a_q a_r |x_q - x_r|^2
    = 2 sum_q a_q |x_q - mu|^2 with A = sum a_q and mu = sum a_q x_q / A. With hard 0/1
    memberships it is twice the k-means sum of squares.
    """

    name = "compact"

    def term(self, node, a, index=None):
        z = node.z if index is None else node.z[index]
        sq = _squared_norms(node) if index is None else _squared_norms(node)[index]
        total = a.sum().clamp_min(1e-12)
        weighted = a @ z
        value = 2.0 * node.scale**2 * ((a * sq).sum() - weighted @ weighted / total)
        if index is not None:
            value = value * (len(node) / len(index))
        return value

    def loss_scale(self, node):
        value = 2.0 * node.scale**2 * node.z.numel()  # z has unit mean square
        return value if value > 0 else 1.0

    def soft_criterion(self, node, a, index=None):
        # Both terms from one weighted sum: the other side's sum is the total minus it.
        if index is not None or type(self).term is not CompactCriterion.term:
            return super().soft_criterion(node, a, index)
        sq, total = _squared_norms(node), _total(node)
        weighted = a @ node.z
        rest = total - weighted
        count = a.sum()
        between = weighted @ weighted / count.clamp_min(1e-12)
        between = between + rest @ rest / (len(node) - count).clamp_min(1e-12)
        return 2.0 * node.scale**2 * (sq.sum() - between)

    def hard_terms(self, node, side):
        # In float64 from float32 products; the node's points are centred and scaled,
        # so the sum of squares minus the squared sum keeps ~6 significant digits.
        sq = _squared_norms(node).double()
        sum1 = (side.to(node.z.dtype) @ node.z).double()
        sums = {True: sum1, False: _total(node).double() - sum1}
        terms = []
        for mask, flag in ((~side, False), (side, True)):
            count = int(mask.sum())
            if count == 0:
                terms.append(0.0)
                continue
            sse = float(sq @ mask.double()) - float(sums[flag] @ sums[flag]) / count
            terms.append(2.0 * node.scale**2 * max(sse, 0.0))
        return terms[0], terms[1]

    def child_value(self, root, members, split, side):
        return split.terms[side]  # the same quantity, already measured by the split

    def node_value(self, root, members):
        if len(members) == len(root):  # z has unit mean square: SSE = scale^2 * m * d
            return 2.0 * root.scale**2 * root.z.numel()
        rows = torch.from_numpy(members).to(root.source.device)
        mean = sum(
            root.source[rows[i : i + _CHUNK]].sum(0, dtype=torch.float64)
            for i in range(0, len(rows), _CHUNK)
        ) / len(rows)
        total = 0.0
        for i in range(0, len(rows), _CHUNK):
            total += float((root.source[rows[i : i + _CHUNK]].double() - mean).pow(2).sum())
        return 2.0 * total


class ConnectedCriterion(ClusterCriterion):
    """Soft normalised cut on the node's k-nearest-neighbour graph.

    Term of a cluster: cut_j / vol_j, with cut_j = sum_{q,r} W_qr a_q (1 - a_r) and
    vol_j = sum_q deg_q a_q. Each node gets the kNN graph of its own points.

    The paper's rule of splitting the leaf with the largest term would pick the cluster
    most tied to the others, so this criterion splits next the leaf whose best split has
    the lowest normalised cut (its candidate split is computed ahead).
    """

    name = "connected"
    priority_from_split = True

    def prepare(self, node, n_neighbors):
        if "graph" not in node.cache and len(node) > 1:
            node.cache["graph"] = knn_graph(node.z, n_neighbors)

    def term(self, node, a, index=None):
        graph: Graph = node.cache["graph"]
        if index is not None:
            return _batch_cut_term(graph, a, index)
        cut = (graph.weight * a[graph.src] * (1.0 - a[graph.dst])).sum()
        return cut / (graph.degree * a).sum().clamp_min(1e-12)

    def start(self, node, restart, rng):
        if restart == 0:
            return spectral_split(node.cache["graph"], rng)
        return two_means_start(node.z, restart - 1, rng)

    def loss_scale(self, node):
        return 1.0

    def split_score(self, node, side, terms):
        # The same tie-break as the spectral sweep: among cuts of ~zero weight,
        # the balanced one wins.
        graph = node.cache["graph"]
        total = float(graph.degree.sum())
        vol1 = float(graph.degree[side].sum())
        balance = 1e-6 * total * (1.0 / max(vol1, 1e-12) + 1.0 / max(total - vol1, 1e-12))
        return float(sum(terms)) + balance

    def node_value(self, root, members):
        graph = root.cache.get("graph")  # built by prepare(root, ...) before any split
        if graph is None:  # a single point
            return 0.0
        inside = torch.zeros(len(root), dtype=torch.bool, device=root.z.device)
        inside[torch.from_numpy(members).to(root.z.device)] = True
        crossing = inside[graph.src] & ~inside[graph.dst]
        vol = float(graph.degree[inside].sum())
        return float(graph.weight[crossing].sum()) / vol if vol > 0 else 0.0

    def priority(self, value, split):
        return -split.score


def _batch_cut_term(graph: Graph, a: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The cut term on the sub-graph induced by a mini-batch of vertices."""
    position = torch.full((graph.n,), -1, dtype=torch.long, device=a.device)
    position[index] = torch.arange(len(index), device=a.device)
    ps, pd = position[graph.src], position[graph.dst]
    keep = (ps >= 0) & (pd >= 0)
    w, s, d = graph.weight[keep], ps[keep], pd[keep]
    degree = torch.zeros(len(index), device=a.device).index_add_(0, s, w)
    cut = (w * a[s] * (1.0 - a[d])).sum()
    return cut / (degree * a).sum().clamp_min(1e-12)


def _total(node: NodeData) -> torch.Tensor:
    if "total" not in node.cache:
        node.cache["total"] = node.z.sum(0)
    return node.cache["total"]


def _squared_norms(node: NodeData) -> torch.Tensor:
    if "sq" not in node.cache:
        node.cache["sq"] = node.z.pow(2).sum(1)
    return node.cache["sq"]


def two_means_start(z: torch.Tensor, restart: int, rng: np.random.RandomState, steps: int = 50):
    """Two-means Lloyd steps on standardised points, from one of two kinds of seed.

    Restart 0 starts from the principal direction (the split at the mean along it);
    later restarts from two k-means++ seeds drawn with ``rng``.

    Returns
    -------
    side : np.ndarray of bool, shape (m,)
    """
    side = z @ _principal_direction(z, rng) > 0 if restart == 0 else _plus_plus_side(z, rng)
    total = z.sum(0)
    for _ in range(steps):
        n1 = int(side.sum())
        if n1 == 0 or n1 == len(z):
            break
        sum1 = side.to(z.dtype) @ z
        c1 = sum1 / n1
        c0 = (total - sum1) / (len(z) - n1)
        new = z @ (c1 - c0) > 0.5 * (c1 @ c1 - c0 @ c0)
        if torch.equal(new, side):
            break
        side = new
    return side.cpu().numpy()


def _principal_direction(z: torch.Tensor, rng, iterations: int = 4) -> torch.Tensor:
    v = torch.from_numpy(rng.standard_normal(z.shape[1])).to(z)
    for _ in range(iterations):
        new = z.T @ (z @ v)
        norm = new.norm()
        if norm == 0:
            break
        new = new / norm
        if torch.allclose(new, v, atol=1e-4):
            v = new
            break
        v = new
    return v


def _plus_plus_side(z: torch.Tensor, rng) -> torch.Tensor:
    sq = z.pow(2).sum(1)
    first = z[int(rng.randint(len(z)))]
    d_first = sq - 2.0 * (z @ first) + first @ first
    weights = d_first.clamp_min(0).double().cpu().numpy()
    total = weights.sum()
    second = z[int(rng.choice(len(z), p=weights / total if total > 0 else None))]
    return sq - 2.0 * (z @ second) + second @ second < d_first


BUILT_IN = {"compact": CompactCriterion, "connected": ConnectedCriterion}


def make_criterion(spec) -> ClusterCriterion:
    """A criterion object from "compact", "connected", an instance, or a term function."""
    if isinstance(spec, ClusterCriterion):
        return spec
    if isinstance(spec, str):
        if spec not in BUILT_IN:
            raise ValueError(f"criterion must be 'compact' or 'connected'; got {spec!r}.")
        return BUILT_IN[spec]()
    if callable(spec):
        return TermCriterion(spec)
    raise ValueError(
        "criterion must be 'compact', 'connected', a ClusterCriterion or a function "
        f"term(x, a); got {type(spec).__name__}."
    )
