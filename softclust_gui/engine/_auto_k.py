"""Does the data support a split? The stopping test behind ``n_clusters="auto"``.

The test asks whether a node holds two modes along the direction of its candidate split,
with an answer that stays honest for small nodes, duplicate points and high dimensions.

Statistic. For 1-D values p_1..p_m, R is the best two-group sum of squares (an exact
1-D 2-means, found by sorting) divided by the one-group sum of squares. Two separated
modes give a small R; a unimodal law cannot go below 1/4: by Khintchine's theorem a
symmetric unimodal variable is X = U Y with U uniform on [0, 1] independent of Y, so the
cut at the mode leaves at least 3/4 of the variance explained at most, and the uniform
law is the one that reaches R = 1/4 (a Gaussian gives 1 - 2/pi = 0.36). The uniform is
therefore the least favourable unimodal reference, as in Hartigan's dip test, and the
null distribution of R is that of a uniform sample of the same size (simulated once per
size with a fixed seed; its left tail is taken as normal, R being a smooth M-statistic).
R sees modes that stand apart, but not a narrow gap between two long, even stretches (two
bands end to end): so a second statistic looks for a density valley at the split's own
cut, against every unimodal law (:func:`valley_p_value`); the two p-values are combined
by Bonferroni.

Honest direction (cross-fitting). A direction chosen on the same points it is tested on
always looks bimodal when d is large against m (128-d image features: any 2-means cut
of one Gaussian blob separates it cleanly). So the node is cut at random into two folds;
on fold A the candidate split's two sides seed a 2-means (Lloyd) refined on A alone,
whose centre difference is the direction; the points of fold B are projected on it and
tested, and the same with the folds swapped. The split is accepted when the smaller of
the two p-values, doubled (Bonferroni), is below ``alpha``. A split that only isolates a
point or two cannot be confirmed by the other fold, and is rejected.

Along the graph (the connected criterion). Connected clusters are not convex: a ring
projected on a straight line looks bimodal (its two arcs seen edge-on), and a ring
around another ring, or two interlocked rings, are unimodal along every straight line.
So when the node has a neighbour graph, the 1-D values are the signed geodesic distance
to the split instead: a point's shortest-path length in the graph (edges weighted by
their Euclidean length) to the nearest fold-A point of child 0, minus that to child 1.
Along a ring or a band these values are spread evenly (R near 1/4); two pieces set
apart, which the graph joins only by a long thin path or not at all, give two groups (a
piece only one child can reach lies beyond every finite value, on that child's side).
The coordinate needs paths of several edges to be continuous: in high dimensions every
neighbour is about as far as any other, and the values fall into lumps of whole hops
that read as modes. So when three quarters of the values lie within ``MIN_HOPS`` median
edge lengths of the split, the straight direction is used instead.

``alpha = 1e-3`` is fixed once for all data; each fold is capped at ``MAX_FOLD`` points
(a random subset) to bound the cost, and nodes with folds under ``MIN_FOLD`` points are
not split. Known limits: without a graph (the compact criterion) the test looks along a
straight direction, so two nested rings are kept together; two clusters whose mixture
along the coordinate has one mode (equal Gaussians less than 2 standard deviations
apart), or a valley too shallow for the node's size, are kept together too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from sklearn.utils import check_random_state

logger = logging.getLogger(__name__)

ALPHA = 1e-3  #: significance level of one split test
MIN_FOLD = 10  #: fewer points per fold than this: the node is too small to split
MAX_FOLD = 4096  #: points per fold beyond this are subsampled
MIN_HOPS = 4.0  #: a graph coordinate spanning fewer edges than this is too coarse
_BANDS = (1 / 16, 1 / 8, 1 / 4)  # valley band half-widths, in interquartile ranges
_NULL_REPS = 400  # uniform samples that calibrate the null, per fold size
_LLOYD_STEPS = 20


@dataclass(frozen=True)
class SplitTest:
    """The outcome of one split test.

    Attributes
    ----------
    accepted : bool
        True when the data supports the split.
    p_value : float
        Bonferroni-combined p-value of the two folds (1.0 when untestable).
    ratio : float
        The smaller two-group / one-group sum-of-squares ratio R of the two folds
        (1/4 for uniform data, lower for two modes; nan when untestable).
    n_tested : int
        Points per fold.
    reason : str
        A short sentence for logs and the user interface.
    """

    accepted: bool
    p_value: float
    ratio: float
    n_tested: int
    reason: str


def assess_split(x, side, *, graph=None, alpha: float = ALPHA, random_state=0) -> SplitTest:
    """Decide whether the points ``x`` support their candidate split ``side``.

    Parameters
    ----------
    x : array-like or torch.Tensor of shape (m, d)
        The node's points (any affine rescaling of them gives the same answer).
    side : array-like of bool, shape (m,)
        The candidate split: True for the points of child 1.
    graph : Graph, optional
        The node's neighbour graph (vertex i is point i). Given, the points are tested
        along their signed geodesic distance to the split instead of a straight direction.
    alpha : float, default=1e-3
        Significance level; the split is accepted when the p-value is below it.
    random_state : int or np.random.RandomState, default=0
        Draws the two folds; the same seed gives the same answer.

    Returns
    -------
    SplitTest
    """
    x = _as_array(x)
    side = np.asarray(side, dtype=bool).reshape(-1)
    if len(side) != len(x):
        raise ValueError(
            f"side has {len(side)} entries but x has {len(x)} points; pass one bool per point."
        )
    m = len(x)
    fold = min(m // 2, MAX_FOLD)
    if fold < MIN_FOLD:
        return SplitTest(
            False, 1.0, float("nan"), fold, f"{m} points: too few to support a split"
        )
    rng = check_random_state(random_state)
    order = rng.permutation(m)
    folds = (order[:fold], order[fold : 2 * fold])

    lengths = None if graph is None else _edge_lengths(graph, x)
    p_values, ratios = [], []
    for fit_rows, test_rows in (folds, folds[::-1]):
        values = None
        if lengths is not None:
            values = _geodesic_values(lengths, side, fit_rows, test_rows)
        if values is None:
            values = _straight_values(x, side, fit_rows, test_rows)
        if values is None:
            p_values.append(1.0)
            ratios.append(float("nan"))
            continue
        values, cut = values
        ratio = split_ratio(values)
        ratios.append(ratio)
        # Two statistics, Bonferroni-combined: R for modes apart, the valley for a gap.
        p_modes = _null_p_value(ratio, len(values))
        p_values.append(min(1.0, 2.0 * min(p_modes, valley_p_value(values, cut))))
    p_value = min(1.0, 2.0 * min(p_values))
    finite = [r for r in ratios if np.isfinite(r)]
    ratio = min(finite) if finite else float("nan")
    accepted = p_value < alpha
    verdict = "two modes" if accepted else "no evidence of two modes"
    reason = (
        f"{verdict} along the split (R = {ratio:.3f}, p = {p_value:.2g}, {fold} points/fold)"
    )
    logger.debug("split test on %d points: %s", m, reason)
    return SplitTest(accepted, p_value, ratio, fold, reason)


def split_ratio(values) -> float:
    """R of 1-D values: best two-group sum of squares / one-group sum of squares.

    nan when the values are all equal (nothing to split).
    """
    values = np.sort(np.asarray(values, dtype=np.float64).reshape(1, -1), axis=1)
    return float(_best_cut_ratios(values)[0])


def _best_cut_ratios(sorted_rows: np.ndarray) -> np.ndarray:
    """R of every row of ``sorted_rows`` (reps, m), each sorted ascending."""
    m = sorted_rows.shape[1]
    rows = sorted_rows - sorted_rows.mean(axis=1, keepdims=True)
    spread = np.abs(rows).max(axis=1, keepdims=True)
    rows = rows / np.where(spread > 0, spread, 1.0)
    total = (rows**2).sum(axis=1)
    s = np.cumsum(rows, axis=1)[:, :-1]
    left = np.arange(1, m, dtype=np.float64)
    # With centred rows the right-hand sum is -s; the sum of squares of the two groups.
    within = total[:, None] - s**2 / left - s**2 / (m - left)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = within.min(axis=1) / total
    return np.where(total > 1e-24, ratio, np.nan)


@lru_cache(maxsize=512)
def _null_moments(m: int) -> tuple[float, float]:
    """Mean and standard deviation of R over uniform samples of size m (fixed seed)."""
    rng = np.random.default_rng(20_241_204 + m)
    ratios = []
    chunk = max(1, 200_000 // m)
    for start in range(0, _NULL_REPS, chunk):
        reps = min(chunk, _NULL_REPS - start)
        ratios.append(_best_cut_ratios(np.sort(rng.random((reps, m)), axis=1)))
    ratios = np.concatenate(ratios)
    return float(ratios.mean()), float(ratios.std(ddof=1))


def _null_p_value(ratio: float, m: int) -> float:
    """P(R_uniform <= ratio) for a uniform sample of size m (normal left tail)."""
    if not np.isfinite(ratio):
        return 1.0
    from scipy.stats import norm

    mean, sd = _null_moments(m)
    return float(norm.cdf((ratio - mean) / sd))


def _straight_values(x, side, fit_rows, test_rows):
    """(values, cut): the test points projected on the direction that fold ``fit_rows``
    gives, and where its 2-means puts the cut; None when the fold has no two sides."""
    found = _fold_direction(x[fit_rows], side[fit_rows])
    if found is None:
        return None
    direction, cut = found
    return x[test_rows] @ direction, cut


def _edge_lengths(graph, x: np.ndarray):
    """The graph as a sparse matrix of Euclidean edge lengths."""
    from scipy.sparse import csr_matrix

    src = graph.src.cpu().numpy()
    dst = graph.dst.cpu().numpy()
    length = np.linalg.norm(x[src] - x[dst], axis=1)
    # A zero-length edge (duplicate points) would read as a missing edge: keep it tiny.
    length = np.maximum(length, 1e-12)
    return csr_matrix((length, (src, dst)), shape=(len(x), len(x)))


def _geodesic_values(lengths, side, fit_rows, test_rows):
    """(values, cut): signed geodesic distances of the test points to the fit fold's
    split, and the cut between the children (0); None when they cannot be tested.

    A test point's value is its graph distance to the nearest fit point of child 0 minus
    that to the nearest fit point of child 1. A point that only one child can reach gets
    a value beyond every finite one, on that child's side; a point neither can reach is
    left out.
    """
    from scipy.sparse.csgraph import dijkstra

    sources = [fit_rows[~side[fit_rows]], fit_rows[side[fit_rows]]]
    if min(len(rows) for rows in sources) == 0:
        return None
    d0, d1 = (
        dijkstra(lengths, directed=False, indices=rows, min_only=True)[test_rows]
        for rows in sources
    )
    reached = np.isfinite(d0) | np.isfinite(d1)
    if np.count_nonzero(reached) < MIN_FOLD:
        return None
    d0, d1 = d0[reached], d1[reached]
    values = np.where(np.isfinite(d0) & np.isfinite(d1), d0 - d1, 0.0)
    beyond = 2.0 * np.abs(values).max() + 1.0
    values[~np.isfinite(d0)] = beyond
    values[~np.isfinite(d1)] = -beyond
    finite = np.abs(values[np.abs(values) < beyond])
    hop = np.median(lengths.data)
    if len(finite) and np.percentile(finite, 75) < MIN_HOPS * hop:
        return None  # the graph is too coarse here: values would come in lumps of hops
    return values, 0.0


def valley_p_value(values, cut: float) -> float:
    """p-value of a density valley at ``cut`` in 1-D values, against every unimodal law.

    For a unimodal density the mass of a band [cut - h, cut + h] is at least the smaller
    of the masses of its two neighbours [cut - 3h, cut - h) and (cut + h, cut + 3h]: the
    density rises towards the mode, wherever it lies. A valley holds less than both.
    With counts n_C in the centre and n_S in a neighbour, a centre with at least the
    neighbour's mass gives P(n_C <= observed) <= P(Bin(n_C + n_S, 1/2) <= observed);
    the larger of the two sides' p-values is valid, since under a unimodal law one side
    at least holds no more than the centre. Band half-widths of 1/16, 1/8 and 1/4 of the
    interquartile range are tried, Bonferroni-combined.
    """
    from scipy.stats import binom

    values = np.asarray(values, dtype=np.float64)
    q1, q3 = np.percentile(values, [25, 75])
    spread = q3 - q1
    if not spread > 0:
        return 1.0
    best = 1.0
    for band in _BANDS:
        h = band * spread
        centre = np.count_nonzero(np.abs(values - cut) <= h)
        left = np.count_nonzero((values >= cut - 3 * h) & (values < cut - h))
        right = np.count_nonzero((values > cut + h) & (values <= cut + 3 * h))
        p = max(binom.cdf(centre, centre + left, 0.5), binom.cdf(centre, centre + right, 0.5))
        best = min(best, p)
    return min(1.0, len(_BANDS) * best)


def _fold_direction(x: np.ndarray, side: np.ndarray):
    """2-means on one fold seeded by the candidate sides; the centre difference or None."""
    for _ in range(_LLOYD_STEPS):
        n1 = int(side.sum())
        if n1 == 0 or n1 == len(side):
            return None
        c1 = x[side].mean(axis=0)
        c0 = x[~side].mean(axis=0)
        new = x @ (c1 - c0) > 0.5 * (c1 @ c1 - c0 @ c0)
        if np.array_equal(new, side):
            break
        side = new
    direction = c1 - c0
    if not np.any(direction != 0):
        return None
    return direction, 0.5 * float(c1 @ c1 - c0 @ c0)


def _as_array(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, on any device
        x = x.detach().cpu().double().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must be a 2-D array (m, d); got shape {x.shape}.")
    return x


class SplitAcceptance:
    """The split test as the tree-growth loop calls it; keeps every outcome.

    Parameters
    ----------
    alpha : float, default=1e-3
    seed : int, default=0
        Node ``i`` draws its folds with seed ``seed + i``, so a fit is repeatable.
    stop : bool, default=False
        True: a rejected split is not made (growth stops there at once). False: every
        split is made and only recorded, for :func:`cut_tree` to cut afterwards.

    Attributes
    ----------
    results : dict of int to SplitTest
        The outcome for every node whose candidate split was tested.
    """

    def __init__(self, alpha: float = ALPHA, seed: int = 0, stop: bool = False):
        self.alpha = alpha
        self.seed = seed
        self.stop = stop
        self.results: dict[int, SplitTest] = {}

    def __call__(self, node_id: int, node, split) -> bool:
        """True when the data of ``node`` (a NodeData) supports ``split``."""
        result = assess_split(
            node.z,
            split.side,
            graph=node.cache.get("graph"),
            alpha=self.alpha,
            random_state=self.seed + node_id,
        )
        self.results[node_id] = result
        logger.debug("node %d (%d points): %s", node_id, len(node), result.reason)
        return result.accepted or not self.stop


def cut_tree(nodes: list, tests: dict[int, SplitTest]) -> tuple[list, dict[int, SplitTest]]:
    """The tree cut below every node that has no supported split in its subtree.

    A split is kept when it, or any split below it, is supported: at the root of many
    clusters the projection on one direction can look flat (a mix of many modes) while
    the splits further down each separate two clear modes; a node becomes a leaf only
    when no split anywhere below it finds two modes.

    Parameters
    ----------
    nodes : list of TreeNode
        A grown tree, root first, children after their parents.
    tests : dict of int to SplitTest
        The test of each internal node's split (a missing node counts as unsupported).

    Returns
    -------
    nodes : list of TreeNode
        The kept nodes, renumbered 0.. in the same order, leaves labelled 0..K-1
        depth-first (child 0 first), as the growth loop labels them.
    tests : dict of int to SplitTest
        The tests of the kept nodes, under their new ids.
    """
    supported = {i: test.accepted for i, test in tests.items()}
    keep: dict[int, bool] = {}
    for node in reversed(nodes):
        below = any(keep[child] for child in node.children)
        keep[node.node_id] = bool(node.children) and (
            supported.get(node.node_id, False) or below
        )

    new_id: dict[int, int] = {}
    kept = []
    for node in nodes:
        if node.parent is not None and not (node.parent in new_id and keep[node.parent]):
            continue
        new_id[node.node_id] = len(kept)
        kept.append((node, keep[node.node_id]))
    cut = []
    for node, split in kept:
        cut.append(
            replace(
                node,
                node_id=new_id[node.node_id],
                parent=None if node.parent is None else new_id[node.parent],
                children=tuple(new_id[c] for c in node.children) if split else (),
                surface=node.surface if split else None,
                label=None,
            )
        )
    label, stack = 0, [0]
    while stack:
        node = cut[stack.pop()]
        if node.children:
            stack.extend(reversed(node.children))
        else:
            node.label = label
            label += 1
    renumbered = {new_id[i]: test for i, test in tests.items() if i in new_id}
    return cut, renumbered
