"""The split primitive: train one surface that cuts one node in two.

``split_node`` is all the tree-growth loop needs: it returns the trained surface, the hard
side of every point and the hard criterion terms of both sides. Starts come from the
criterion (2-means from the principal direction, or the spectral cut); each start becomes
a surface (the bisecting hyperplane of the start's two means, fitted to the start when
that hyperplane does not reproduce it), which gradient descent then refines on the soft
criterion until the loss stops improving. The best candidate by hard criterion wins.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.functional import binary_cross_entropy_with_logits

from ._optim import Optimizer
from .criteria import ClusterCriterion, NodeData
from .surfaces import NodeSurface, make_net, set_hyperplane

logger = logging.getLogger(__name__)

_PATIENCE = 10  # epochs without improvement before a refinement stops
_STILL = 3  # full-batch epochs without any point changing side before it stops
_FIT_LR = 0.05  # fitting a start is supervised and well posed: a brisk rate is safe
_FIT_AGREEMENT = 0.995  # a start hyperplane this close to the start needs no fitting
_FIT_DONE = 0.9995  # fitting a start stops at this agreement with it
_FIT_EPOCHS = 1500  # ... or after this many epochs
_FIT_PATIENCE = 150  # ... or after this many epochs without a better agreement
_LOGIT_CLAMP = 30.0
_EXTRA_TRIES = 3  # more starts when all restarts put every point on one side
_MARGIN = 3.0  # start surfaces: median |logit| of the points, sigmoid(3) = 0.95


@dataclass(frozen=True)
class SplitSettings:
    """The estimator's training parameters, as one split uses them."""

    surface: str = "linear"
    hidden: int = 32
    optimizer: str = "adam"
    learning_rate: float = 0.02
    max_epochs: int = 100
    tol: float = 1e-4
    n_restarts: int = 1
    batch_size: int | None = None
    n_neighbors: int = 10


@dataclass
class SplitResult:
    """One node cut in two.

    Attributes
    ----------
    surface : NodeSurface
        The trained model; ``surface.assign(x)`` gives ``side`` for the node's points.
    side : np.ndarray of bool, shape (m,)
        True for the points of child 1 (k(x) >= 0.5).
    terms : tuple of float
        Hard criterion terms of child 0 and child 1 (in the node's own context).
    score : float
        The criterion's split score (lower is better) that ranked the restarts.
    restart : int
        Which restart won.
    """

    surface: NodeSurface
    side: np.ndarray
    terms: tuple[float, float]
    score: float
    restart: int


def split_node(
    node: NodeData,
    criterion: ClusterCriterion,
    settings: SplitSettings,
    generator: torch.Generator,
    rng: np.random.RandomState,
    report=None,
):
    """Split one node into two clusters; None when no restart gives two non-empty sides.

    Parameters
    ----------
    node : NodeData
        The node's points (at least 2, not all identical).
    criterion : ClusterCriterion
    settings : SplitSettings
    generator : torch.Generator
        CPU generator that seeds the surfaces' initial weights.
    rng : np.random.RandomState
        Seeds the starts.
    report : callable(epoch, restart) or None
        Called every few epochs; may raise FitCancelled.
    """
    criterion.prepare(node, settings.n_neighbors)
    best = None
    for restart in range(settings.n_restarts + _EXTRA_TRIES):
        if restart >= settings.n_restarts and best is not None:
            break  # extra tries only when every restart so far was one-sided
        start = criterion.start(node, restart, rng)
        if start is None or start.all() or not start.any():
            logger.debug("restart %d of a %d-point node: one-sided start", restart, len(node))
            continue
        net = make_net(settings.surface, node.z.shape[1], settings.hidden, generator)
        net = net.to(node.z.device)
        surface = NodeSurface(net, node.offset, node.scale, settings.surface)
        side0 = torch.from_numpy(start).to(node.z.device)
        _fit_start(surface, node, side0, settings, report, restart)
        candidates = [copy.deepcopy(surface)]
        _refine(surface, node, criterion, settings, generator, report, restart)
        candidates.append(surface)
        for candidate in candidates:
            result = _evaluate(candidate, node, criterion, restart)
            if result is not None and (best is None or result.score < best.score):
                best = result
    return best


def _evaluate(surface, node, criterion, restart):
    surface.eval()
    with torch.no_grad():
        side = surface.net(node.z).squeeze(-1) >= 0
    n1 = int(side.sum())
    if n1 == 0 or n1 == len(node):
        return None
    terms = criterion.hard_terms(node, side)
    score = criterion.split_score(node, side, terms)
    return SplitResult(surface, side.cpu().numpy(), terms, score, restart)


def _fit_start(surface, node, side, settings, report, restart):
    """Make the surface reproduce the start partition ``side``."""
    z = node.z
    s = side.to(z.dtype)
    c1 = (s @ z) / s.sum()
    c0 = ((1.0 - s) @ z) / (1.0 - s).sum()
    w = c1 - c0
    b = -0.5 * float(w @ (c0 + c1))
    with torch.no_grad():
        logit = z @ w + b
        spread = float(logit.abs().median())
    if spread > 0:
        w, b = w * (_MARGIN / spread), b * (_MARGIN / spread)
    set_hyperplane(surface.net, w, b)
    agreement = float(((logit >= 0) == side).float().mean())
    if agreement >= _FIT_AGREEMENT:
        return

    # The bisector misses the start (a spectral start, usually): fit it with a
    # class-balanced logistic loss until the surface reproduces the start, or until
    # the agreement has stopped rising.
    n1 = float(s.sum())
    pos_weight = torch.tensor((len(s) - n1) / n1, device=z.device)
    optimizer = Optimizer(surface.net.parameters(), "adam", _FIT_LR)
    best, since = 0.0, 0
    for epoch in range(_FIT_EPOCHS):
        logit = surface.net(z).squeeze(-1)
        loss = binary_cross_entropy_with_logits(logit, s, pos_weight=pos_weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if epoch % 10 == 9:
            if report is not None:
                report(epoch + 1, restart)
            agreement = float(((logit >= 0) == side).float().mean())
            best, since = (agreement, 0) if agreement > best else (best, since + 10)
            if agreement >= _FIT_DONE or since >= _FIT_PATIENCE:
                break


def _refine(surface, node, criterion, settings, generator, report, restart):
    """Gradient descent on the soft criterion until it stops paying.

    Stops when the loss has not improved by a relative ``tol`` for ``_PATIENCE`` epochs,
    or (full batches) when no point has changed side for ``_STILL`` epochs: then the
    loss only falls by sharpening the sigmoid, which leaves the clusters as they are.
    """
    z = node.z
    scale = criterion.loss_scale(node)
    optimizer = Optimizer(surface.net.parameters(), settings.optimizer, settings.learning_rate)
    best, stall, still, side = float("inf"), 0, 0, None
    m = len(node)
    batch = m if settings.batch_size is None else min(settings.batch_size, m)
    for epoch in range(settings.max_epochs):
        order = None if batch == m else torch.randperm(m, generator=generator).to(z.device)
        total = 0.0
        for start in range(0, m, batch):
            index = None if order is None else order[start : start + batch]
            logit = surface.net(z if index is None else z[index]).squeeze(-1)
            # Clamped: memberships below ~1e-13 only add denormal floats, which are slow.
            a = torch.sigmoid(logit.clamp(-_LOGIT_CLAMP, _LOGIT_CLAMP))
            loss = criterion.soft_criterion(node, a, index)
            loss = loss / scale
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * (m if index is None else len(index)) / m
        if order is None:
            new_side = logit.detach() >= 0
            still = still + 1 if side is not None and torch.equal(new_side, side) else 0
            side = new_side
        if total < best - settings.tol * abs(best):
            best, stall = total, 0
        else:
            stall += 1
        if report is not None and epoch % 10 == 9:
            report(epoch + 1, restart)
        if stall >= _PATIENCE or still >= _STILL:
            break
    logger.debug("refined a %d-point node in %d epochs, loss %.6g", m, epoch + 1, best)
