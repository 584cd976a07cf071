"""Growing the tree of splits: split everything in two, then keep splitting a leaf.

The loop asks the criterion which leaf comes next (the paper's rule: the largest partial
criterion) and calls the split primitive on it; it knows nothing about how a split is
trained, so other split models and stopping tests can plug in here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from .criteria import ClusterCriterion, NodeData
from .split import SplitSettings, split_node

logger = logging.getLogger(__name__)


@dataclass
class TreeNode:
    """One node of the fitted tree (``tree_[node_id]``).

    Attributes
    ----------
    node_id : int
        Position in ``tree_``; the root is 0.
    parent : int or None
    children : tuple of int
        () for a leaf; (child for k(x) < 0.5, child for k(x) >= 0.5) for a split.
    members : np.ndarray of int64, shape (size,)
        Sorted row indices into the X given to ``fit``.
    size : int
    criterion : float
        The node's partial criterion as one cluster of the fit.
    surface : NodeSurface or None
        The trained split (on the CPU); None for a leaf.
    label : int or None
        The cluster label of a leaf; None for an internal node.
    """

    node_id: int
    parent: int | None
    children: tuple[int, ...]
    members: np.ndarray
    size: int
    criterion: float
    surface: object = None
    label: int | None = None

    @property
    def is_leaf(self) -> bool:
        return not self.children


def grow_tree(
    source: torch.Tensor,
    n_clusters: int,
    criterion: ClusterCriterion,
    settings: SplitSettings,
    generator: torch.Generator,
    rng: np.random.RandomState,
    reporter,
    accept=None,
) -> list[TreeNode]:
    """Split ``source`` (n, d) into ``n_clusters`` leaves; returns the nodes, root first.

    Leaves are labelled 0..K-1 in depth-first order, child 0 first.
    Raises ValueError when fewer clusters can be formed (too few distinct points).
    ``accept(node_id, node_data, split) -> bool``, when given, is a stopping test: a leaf
    whose candidate split it rejects stays whole, and growth ends without error when no
    leaf is left to split (``n_clusters`` is then an upper bound).
    """
    n = len(source)
    root_data = NodeData.from_members(source, np.arange(n, dtype=np.int64))
    criterion.prepare(root_data, settings.n_neighbors)
    nodes = [
        TreeNode(
            0,
            None,
            (),
            root_data.members,
            n,
            criterion.node_value(root_data, root_data.members),
        )
    ]
    data = {0: root_data}
    candidates: dict[int, object] = {}
    unsplittable: set[int] = set()

    while _n_leaves(nodes) < n_clusters:
        leaf, split = _next_split(
            nodes,
            data,
            candidates,
            unsplittable,
            criterion,
            settings,
            generator,
            rng,
            reporter,
            accept,
        )
        if leaf is None and accept is not None:
            break
        if leaf is None:
            raise ValueError(
                f"only {_n_leaves(nodes)} clusters could be formed, fewer than "
                f"n_clusters={n_clusters}: every cluster left holds identical points. "
                "X has too few distinct points; ask for fewer clusters."
            )
        _apply_split(nodes, data, leaf, split, criterion, root_data)
        candidates.pop(leaf, None)
        reporter.done += 1
        reporter("split", f"split node {leaf} ({nodes[leaf].size:,} points)", leaf)

    _label_leaves(nodes)
    return nodes


def _n_leaves(nodes) -> int:
    return sum(node.is_leaf for node in nodes)


def _next_split(
    nodes, data, candidates, unsplittable, criterion, settings, generator, rng, reporter, accept
):
    """The leaf to split next and its split, or (None, None) when none can be split."""

    def candidate(leaf):
        if leaf not in candidates:
            candidates[leaf] = _split_leaf(
                leaf, nodes, data, criterion, settings, generator, rng, reporter, accept
            )
        if candidates[leaf] is None:
            unsplittable.add(leaf)
        return candidates[leaf]

    leaves = [
        node.node_id for node in nodes if node.is_leaf and node.node_id not in unsplittable
    ]
    if criterion.priority_from_split:
        for leaf in leaves:
            candidate(leaf)
        leaves = [leaf for leaf in leaves if leaf not in unsplittable]
        ranked = sorted(
            leaves, key=lambda i: -criterion.priority(nodes[i].criterion, candidates[i])
        )
    else:
        ranked = sorted(leaves, key=lambda i: -criterion.priority(nodes[i].criterion, None))
    for leaf in ranked:
        split = candidate(leaf)
        if split is not None:
            return leaf, split
    return None, None


def _split_leaf(leaf, nodes, data, criterion, settings, generator, rng, reporter, accept):
    node = nodes[leaf]
    if leaf not in data:
        data[leaf] = NodeData.from_members(data[0].source, node.members)
    node_data = data[leaf]
    if node.size < 2 or node_data.scale == 0:
        return None
    message = f"splitting node {leaf} ({node.size:,} points)"
    reporter("split", message, leaf)

    def report(epoch, restart):
        reporter(
            "split",
            f"{message}, restart {restart + 1}/{settings.n_restarts}, epoch {epoch}",
            leaf,
            epoch,
        )

    split = split_node(node_data, criterion, settings, generator, rng, report)
    if split is None:
        logger.warning(
            "node %d (%d points): every restart put all points on one side", leaf, node.size
        )
    elif accept is not None and not accept(leaf, node_data, split):
        return None
    return split


def _apply_split(nodes, data, leaf, split, criterion, root_data):
    parent = nodes[leaf]
    ids = []
    for side in (0, 1):
        members = parent.members[split.side == bool(side)]
        child_id = len(nodes)
        value = criterion.child_value(root_data, members, split, side)
        nodes.append(TreeNode(child_id, leaf, (), members, len(members), value))
        ids.append(child_id)
    parent.children = tuple(ids)
    parent.surface = split.surface.cpu().eval()
    if leaf != 0:
        data.pop(leaf, None)  # the root stays: node values are measured on it
    logger.debug(
        "node %d (%d points) -> %d + %d, terms %s",
        leaf,
        parent.size,
        nodes[ids[0]].size,
        nodes[ids[1]].size,
        split.terms,
    )


def _label_leaves(nodes) -> None:
    label, stack = 0, [0]
    while stack:
        node = nodes[stack.pop()]
        if node.is_leaf:
            node.label = label
            label += 1
        else:
            stack.extend(reversed(node.children))
