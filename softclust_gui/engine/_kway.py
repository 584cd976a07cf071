"""K clusters at once: a K-output softmax surface trained on the softened criterion.

The greedy tree cuts one cluster at a time and never revisits a cut. Here one model with
K outputs, a_qj = softmax_j(g(x_q; w)), gives every point a membership in every cluster,
and gradient descent lowers the softened within-cluster sum of squares of all clusters
together, through the weighted-mean identity in O(n K d):

    SCR = sum_j 2 * (sum_q a_qj |z_q|^2 - |sum_q a_qj z_q|^2 / sum_q a_qj).

g is linear (the clusters are then the cells of a power diagram, which holds every
Voronoi partition) or a one-hidden-layer ReLU MLP. The model starts from given labels:
a linear g starts as the nearest-centre rule of the labels' centres, so it already
reproduces one Lloyd assignment step, which never raises the sum of squares. Training
keeps the best hard partition seen, counting the starting labels, with no cluster empty,
so the refined sum of squares is never above the starting one.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from ..compute import resolve_device
from ._optim import Optimizer
from ._validation import check_new_points, check_points
from .surfaces import StandardisedSurface

logger = logging.getLogger(__name__)

_PATIENCE = 10  # epochs without loss improvement to stop
_STILL = 25  # epochs without any point changing cluster to stop
_MARGIN = 3.0  # start logits: median gap between the best and second-best cluster
_FIT_LR = 0.05
_FIT_AGREEMENT = 0.98


class KWaySurface(StandardisedSurface):
    """K logits per point: ``forward(x)`` (m, d) raw points -> (m, K).

    ``net`` maps standardised points (m, d) to logits (m, K); the offset and scale are the
    mean and common standard deviation of the training points.
    """

    @torch.no_grad()
    def membership(self, x: torch.Tensor) -> torch.Tensor:
        """Soft memberships, shape (m, K), rows summing to 1."""
        return torch.softmax(self(x), dim=1)

    @torch.no_grad()
    def assign(self, x: torch.Tensor, block: int = 65536) -> torch.Tensor:
        """Hard cluster of each raw point (int64, shape (m,))."""
        parts = [self(x[i : i + block]).argmax(1) for i in range(0, len(x), block)]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64)


@dataclass
class KWayResult:
    """The outcome of :func:`refine_kway`.

    Attributes
    ----------
    labels : np.ndarray of int64, shape (n,)
        The best hard partition found (0..K-1, none empty).
    surface : KWaySurface
        The model at the epoch that gave ``labels`` (on the CPU, in eval mode).
    sse : float
        Within-cluster sum of squares of ``labels``, in the units of X squared.
    start_sse : float
        The same for the starting labels.
    n_epochs : int
        Epochs of refinement run.
    seconds : float
        Wall time of the refinement.
    """

    labels: np.ndarray
    surface: KWaySurface
    sse: float
    start_sse: float
    n_epochs: int
    seconds: float


def refine_kway(
    X,
    labels,
    *,
    surface: str = "linear",
    hidden: int = 32,
    optimizer: str = "adam",
    learning_rate: float = 0.1,
    max_epochs: int = 300,
    tol: float = 1e-4,
    device: str | torch.device = "cpu",
    random_state: int | None = 0,
) -> KWayResult:
    """Refine a partition of X with a K-output softmax surface on the soft criterion.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Finite points.
    labels : array-like of int, shape (n,)
        Starting partition with labels 0..K-1, every one used (e.g. the greedy tree's
        ``labels_``).
    surface : {"linear", "mlp"}, default="linear"
    hidden : int, default=32
        Hidden units of the MLP (raised to 2 K when smaller, so the start fits exactly).
    optimizer : {"adam", "rmsprop", "adagrad"}, default="adam"
    learning_rate : float, default=0.1
    max_epochs : int, default=300
        Full-batch epochs at most; training stops earlier when the loss has not improved
        by a relative ``tol`` for 10 epochs, or no point changed cluster for 25 epochs.
    tol : float, default=1e-4
    device : str or torch.device, default="cpu"
    random_state : int or None, default=0
        Seeds the MLP's free hidden units.

    Returns
    -------
    KWayResult
    """
    began = time.perf_counter()
    x = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32), device=device)
    start = _check_labels(labels, len(x))
    k = int(start.max()) + 1
    offset = x.mean(0)
    z = x - offset
    scale = float(z.pow(2).mean().sqrt()) or 1.0
    z = z / scale
    sq = z.pow(2).sum(1)
    start_t = torch.from_numpy(start).to(x.device)
    start_sse = _hard_sse(z, sq, start_t, k) * scale**2

    generator = torch.Generator().manual_seed(0 if random_state is None else int(random_state))
    net = _start_net(surface, z, start_t, k, hidden, generator).to(x.device)
    model = KWaySurface(net, offset, scale, surface)
    if surface == "mlp":
        _fit_start(net, z, start_t)

    best_labels, best_sse, best_state = start, start_sse, copy.deepcopy(net.state_dict())
    loss_scale = max(2.0 * start_sse / scale**2, 1e-12)
    opt = Optimizer(net.parameters(), optimizer, learning_rate)
    best_loss, stall, still, previous = float("inf"), 0, 0, None
    epoch = -1
    for epoch in range(max_epochs):
        logits = net(z)
        hard = logits.detach().argmax(1)
        sse = _hard_sse(z, sq, hard, k) * scale**2
        if sse < best_sse:
            best_labels, best_sse = hard.cpu().numpy(), sse
            best_state = copy.deepcopy(net.state_dict())
        still = still + 1 if previous is not None and torch.equal(hard, previous) else 0
        previous = hard

        loss = _soft_criterion(z, sq, torch.softmax(logits, dim=1)) / loss_scale
        opt.zero_grad()
        loss.backward()
        opt.step()
        value = float(loss.detach())
        if epoch == 0 or value < best_loss - tol * abs(best_loss):
            best_loss, stall = value, 0
        else:
            stall += 1
        if stall >= _PATIENCE or still >= _STILL:
            break

    net.load_state_dict(best_state)
    model = model.cpu().eval()
    seconds = time.perf_counter() - began
    logger.debug(
        "k-way refinement of %d points into %d: SSE %.6g -> %.6g in %d epochs, %.2f s",
        len(x),
        k,
        start_sse,
        best_sse,
        epoch + 1,
        seconds,
    )
    return KWayResult(
        np.asarray(best_labels, dtype=np.int64), model, best_sse, start_sse, epoch + 1, seconds
    )


def _check_labels(labels, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(
            f"labels must have shape ({n},), one per point of X; got shape {labels.shape}."
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers 0..K-1; got dtype {labels.dtype}.")
    used = np.unique(labels)
    if used[0] < 0 or not np.array_equal(used, np.arange(len(used))):
        raise ValueError(
            f"labels must use every value 0..K-1 with none missing; got the values "
            f"{used[:10].tolist()}{'...' if len(used) > 10 else ''}. Relabel them, e.g. "
            "with np.unique(labels, return_inverse=True)[1]."
        )
    return labels.astype(np.int64)


def _soft_criterion(z, sq, a):
    """sum_j 2 (sum_q a_qj |z_q|^2 - |sum_q a_qj z_q|^2 / A_j): (n, d), (n,), (n, K)."""
    mass = a.sum(0).clamp_min(1e-12)
    sums = a.T @ z
    return 2.0 * ((a.T @ sq).sum() - (sums.pow(2).sum(1) / mass).sum())


@torch.no_grad()
def _hard_sse(z, sq, labels, k) -> float:
    """Within-cluster sum of squares of a hard partition (in z units); inf if one is empty."""
    counts = torch.bincount(labels, minlength=k).double()
    if bool((counts == 0).any()):
        return float("inf")
    sums = torch.zeros(k, z.shape[1], dtype=torch.float64, device=z.device)
    sums.index_add_(0, labels, z.double())
    return max(float(sq.double().sum() - (sums.pow(2).sum(1) / counts).sum()), 0.0)


@torch.no_grad()
def _start_logits(z, labels, k):
    """Nearest-centre logits z.c_j - |c_j|^2 / 2 of the labels' centres, as (W, b)."""
    counts = torch.bincount(labels, minlength=k).to(z.dtype)
    centres = torch.zeros(k, z.shape[1], dtype=z.dtype, device=z.device)
    centres.index_add_(0, labels, z)
    centres /= counts[:, None]
    weight, bias = centres, -0.5 * centres.pow(2).sum(1)
    logits = z @ weight.T + bias
    top = logits.topk(2, dim=1).values if k > 1 else logits
    gap = float((top[:, 0] - top[:, -1]).median()) if k > 1 else 0.0
    factor = _MARGIN / gap if gap > 0 else 1.0
    return weight * factor, bias * factor


def _start_net(kind, z, labels, k, hidden, generator):
    weight, bias = _start_logits(z, labels, k)
    d = z.shape[1]
    if kind == "linear":
        net = nn.Linear(d, k)
        with torch.no_grad():
            net.weight.copy_(weight)
            net.bias.copy_(bias)
        return net
    if kind != "mlp":
        raise ValueError(f"surface must be 'linear' or 'mlp'; got {kind!r}.")

    # Units 2j and 2j+1 carry relu(u_j) and relu(-u_j), whose difference is the start
    # logit u_j; the other units start with zero output weight, free to bend the cells.
    width = max(hidden, 2 * k)
    net = nn.Sequential(nn.Linear(d, width), nn.ReLU(), nn.Linear(width, k))
    first, _, last = net
    with torch.no_grad():
        for param in net.parameters():
            bound = 1.0 / max(1, param.shape[-1]) ** 0.5
            param.copy_(torch.rand(param.shape, generator=generator) * 2 * bound - bound)
        first.weight[0 : 2 * k : 2] = weight
        first.bias[0 : 2 * k : 2] = bias
        first.weight[1 : 2 * k : 2] = -weight
        first.bias[1 : 2 * k : 2] = -bias
        last.weight.zero_()
        last.bias.zero_()
        index = torch.arange(k)
        last.weight[index, 2 * index] = 1.0
        last.weight[index, 2 * index + 1] = -1.0
    return net


def _fit_start(net, z, labels, max_epochs: int = 300):
    """Let the MLP reproduce the starting labels themselves (not only their centres)."""
    with torch.no_grad():
        agreement = float((net(z).argmax(1) == labels).float().mean())
    if agreement >= _FIT_AGREEMENT:
        return
    opt = Optimizer(net.parameters(), "adam", _FIT_LR)
    for epoch in range(max_epochs):
        logits = net(z)
        loss = nn.functional.cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if epoch % 10 == 9 and float((logits.argmax(1) == labels).float().mean()) >= 0.98:
            break


class SoftmaxClustering(ClusterMixin, BaseEstimator):
    """K clusters at once: the greedy tree's leaves refined by a K-output softmax surface.

    ``fit`` grows :class:`HypersurfaceClustering`'s tree ("compact" criterion, linear
    splits) to ``n_clusters`` leaves, then trains one K-output surface on the softened
    sum of squares of all clusters together (:func:`refine_kway`). The result is a flat
    partition: points move between leaves that are not siblings, so the refined
    clusters no longer nest in the tree's splits; ``start_labels_`` keeps the tree's
    leaves, and cluster j of ``labels_`` is the refinement of leaf j.

    Parameters
    ----------
    n_clusters : int, default=2
        Number of clusters, >= 1.
    surface : {"linear", "mlp"}, default="linear"
        The K-output model: linear logits (cells of a power diagram) or a one-hidden-layer
        ReLU MLP (curved cells).
    hidden : int, default=32
        Hidden units of the MLP (at least 2 * n_clusters are used).
    optimizer : {"adam", "rmsprop", "adagrad"}, default="adam"
    learning_rate : float, default=0.1
    max_epochs : int, default=300
        Refinement epochs at most (full batch); it stops earlier when the loss stops
        improving by a relative ``tol``.
    tol : float, default=1e-4
    n_restarts : int, default=3
        Starts per split of the starting tree.
    device : {"auto", "cpu", "cuda", "mps"}, default="auto"
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    labels_ : np.ndarray of int64, shape (n_samples,)
        The refined clusters 0..n_clusters-1, none empty. Their sum of squares is never
        above that of ``start_labels_``.
    start_labels_ : np.ndarray of int64, shape (n_samples,)
        The greedy tree's leaves the refinement started from.
    surface_ : KWaySurface
        The trained model; :meth:`predict` takes the most probable cluster.
    inertia_ : float
        Within-cluster sum of squares of ``labels_`` (units of X squared).
    criterion_ : float
        2 * ``inertia_``, the compact criterion as ``HypersurfaceClustering`` reports it.
    n_epochs_ : int
    n_clusters_ : int
    n_features_in_ : int

    Notes
    -----
    When no refinement epoch beats the starting leaves, ``labels_`` keeps them while the
    surface is the start model (their nearest-centre rule), so ``predict`` on the training
    points can then differ from ``labels_`` on points the tree cut curved.
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "surface": [StrOptions({"linear", "mlp"})],
        "hidden": [Interval(Integral, 2, None, closed="left")],
        "optimizer": [StrOptions({"adam", "rmsprop", "adagrad"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_restarts": [Interval(Integral, 1, None, closed="left")],
        "device": [StrOptions({"auto", "cpu", "cuda", "mps"})],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_clusters=2,
        *,
        surface="linear",
        hidden=32,
        optimizer="adam",
        learning_rate=0.1,
        max_epochs=300,
        tol=1e-4,
        n_restarts=3,
        device="auto",
        random_state=None,
    ):
        self.n_clusters = n_clusters
        self.surface = surface
        self.hidden = hidden
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.max_epochs = max_epochs
        self.tol = tol
        self.n_restarts = n_restarts
        self.device = device
        self.random_state = random_state

    def fit(self, X, y=None):
        """Grow the starting tree on X and refine its leaves; returns self.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        """
        from .estimator import HypersurfaceClustering

        self._validate_params()
        X = check_points(X, self.n_clusters)
        validate_data(self, X, skip_check_array=True, reset=True)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(2**31 - 1))
        tree = HypersurfaceClustering(
            self.n_clusters,
            criterion="compact",
            surface="linear",
            n_restarts=self.n_restarts,
            device=self.device,
            random_state=seed,
        ).fit(X)
        result = refine_kway(
            X,
            tree.labels_,
            surface=self.surface,
            hidden=self.hidden,
            optimizer=self.optimizer,
            learning_rate=float(self.learning_rate),
            max_epochs=self.max_epochs,
            tol=float(self.tol),
            device=resolve_device(self.device),
            random_state=seed,
        )
        self.start_labels_ = tree.labels_
        self.labels_ = result.labels
        self.surface_ = result.surface
        self.inertia_ = result.sse
        self.criterion_ = 2.0 * result.sse
        self.n_epochs_ = result.n_epochs
        self.n_clusters_ = int(result.labels.max()) + 1
        return self

    def fit_predict(self, X, y=None):
        """Fit on X and return ``labels_``, shape (n_samples,)."""
        return self.fit(X).labels_

    def predict(self, X):
        """The most probable cluster of each point, shape (n_samples,) int64."""
        check_is_fitted(self, "surface_")
        checked = check_new_points(X, self.n_features_in_)
        validate_data(self, X, skip_check_array=True, reset=False)
        points = torch.from_numpy(np.ascontiguousarray(checked, dtype=np.float32))
        return self.surface_.assign(points).numpy().astype(np.int64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
