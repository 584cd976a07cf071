"""HypersurfaceClustering: the scikit-learn estimator around the tree of splits."""

from __future__ import annotations

import logging
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ..compute import resolve_device
from ._auto_k import SplitAcceptance, cut_tree
from ._validation import check_new_points, check_points
from .criteria import ClusterCriterion, make_criterion
from .progress import Reporter
from .split import SplitSettings
from .tree import grow_tree

logger = logging.getLogger(__name__)


class HypersurfaceClustering(ClusterMixin, BaseEstimator):
    """Divisive clustering by trained separating hypersurfaces.

    Splits the data in two with a model k(x; w) in [0, 1] (a soft hyperplane or a small
    neural network) trained to minimise a softened clustering criterion, then keeps
    splitting one leaf until there are ``n_clusters``. Every split keeps its trained
    model, so :meth:`predict` routes new points down the tree without refitting.

    Parameters
    ----------
    n_clusters : int or "auto", default=2
        Number of clusters (leaves of the tree), >= 1. "auto": the tree grows as usual
        to ``max_clusters`` leaves and is cut below every node where no split finds two
        modes (see Notes).
    criterion : {"compact", "connected"}, ClusterCriterion or callable, default="compact"
        "compact": the paper's softened within-cluster sum of squares (clusters that are
        compact blobs). "connected": a soft normalised cut on a k-nearest-neighbour
        graph (clusters of any shape that are separated by low-density gaps; pair it
        with ``surface="mlp"``). A :class:`ClusterCriterion` or a function
        ``term(x, a)`` gives a criterion of your own made of per-cluster terms.
    surface : {"linear", "mlp"}, default="linear"
        Model of each separating surface: a logistic unit (hyperplane) or an MLP with
        one ReLU hidden layer of ``hidden`` units and a sigmoid output.
    hidden : int, default=32
        Hidden units of the MLP surface (>= 2).
    optimizer : {"adam", "rmsprop", "adagrad"}, default="adam"
    learning_rate : float, default=0.02
        Step size of the refinement on the soft criterion (points are standardised per
        node, so one value suits data of any units).
    max_epochs : int, default=100
        Upper limit of refinement epochs per start; refinement stops earlier when the
        loss has not improved by a relative ``tol`` for 10 epochs, or when no point has
        changed side for 3 epochs (full batches).
    tol : float, default=1e-4
    n_restarts : int, default=1
        Starts per split; the best by the hard criterion is kept (a start that puts
        every point on one side is replaced by another, up to 3 more). Start 0 is the
        principal direction (compact) or the spectral cut (connected); later starts
        are 2-means from k-means++ seeds (for "connected", start 1 is the principal
        direction).
    batch_size : int or None, default=None
        Points per gradient step; None trains on the whole node at once.
    n_neighbors : int, default=10
        Neighbours per point in the graph of the "connected" criterion.
    device : {"auto", "cpu", "cuda", "mps"}, default="auto"
    random_state : int, RandomState instance or None, default=None
        The same seed gives the same labels on the CPU.
    callback : callable or None, default=None
        ``callback(progress: FitProgress)``, called during ``fit``; returning True stops
        the fit, which then raises :class:`FitCancelled` and leaves the estimator unfitted.
    max_clusters : int, default=20
        Upper bound on the number of clusters with ``n_clusters="auto"``; ignored
        otherwise.

    Attributes
    ----------
    labels_ : np.ndarray of int64, shape (n_samples,)
        Cluster of each point, 0..n_clusters_-1 (one label per leaf).
    tree_ : list of TreeNode
        All nodes, indexed by node id; the root is ``tree_[0]``.
    criterion_ : float
        The final hard criterion, the sum of the leaves' partial criteria (for
        "compact": twice the within-cluster sum of squares; for "connected": the
        normalised cut of the leaves on the root's neighbour graph).
    n_clusters_ : int
    n_features_in_ : int
    split_tests_ : dict of int to SplitTest
        Only with ``n_clusters="auto"``: the split test's outcome for every node of
        ``tree_`` whose split was tested (the leaves' splits were cut away).

    Notes
    -----
    With ``n_clusters="auto"``, each candidate split is tested before it is applied
    (:func:`~softclust_gui.engine.assess_split`): the node is cut into two random folds,
    a 2-means direction seeded by the split is fitted on one fold and the other fold's
    projection on it is tested for two modes apart (against uniform data, the least
    favourable unimodal law) and for a density valley at the split's cut (against every
    unimodal law), both ways, at the level 1e-3 fixed for all data. With the connected
    criterion the tested coordinate is the signed geodesic distance to the split in the
    node's neighbour graph, so rings and nested shapes are judged along the data, not
    across it (a straight direction again where the graph is too coarse, as in high
    dimensions). A split is kept when it, or any split below it, is supported: the tree
    is the one the fixed-K fit grows to ``max_clusters`` leaves, cut where the test says
    stop.

    A user criterion is a sum over clusters of a term f(X, a), where a holds the
    memberships in [0, 1] (0/1 for a hard partition), for example
    ``lambda x, a: (a * (x - (a @ x) / a.sum()).norm(dim=1)).sum()``; see
    :class:`ClusterCriterion` for the methods a subclass may override.

    Examples
    --------
    >>> from sklearn.datasets import make_moons
    >>> X, _ = make_moons(300, noise=0.05, random_state=0)
    >>> model = HypersurfaceClustering(2, criterion="connected", surface="mlp",
    ...                                random_state=0).fit(X)
    >>> model.labels_.shape
    (300,)
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_clusters": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "criterion": [StrOptions({"compact", "connected"}), ClusterCriterion, callable],
        "surface": [StrOptions({"linear", "mlp"})],
        "hidden": [Interval(Integral, 2, None, closed="left")],
        "optimizer": [StrOptions({"adam", "rmsprop", "adagrad"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_restarts": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "device": [StrOptions({"auto", "cpu", "cuda", "mps"})],
        "random_state": ["random_state"],
        "callback": [callable, None],
        "max_clusters": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_clusters=2,
        *,
        criterion="compact",
        surface="linear",
        hidden=32,
        optimizer="adam",
        learning_rate=0.02,
        max_epochs=100,
        tol=1e-4,
        n_restarts=1,
        batch_size=None,
        n_neighbors=10,
        device="auto",
        random_state=None,
        callback=None,
        max_clusters=20,
    ):
        self.n_clusters = n_clusters
        self.criterion = criterion
        self.surface = surface
        self.hidden = hidden
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.max_epochs = max_epochs
        self.tol = tol
        self.n_restarts = n_restarts
        self.batch_size = batch_size
        self.n_neighbors = n_neighbors
        self.device = device
        self.random_state = random_state
        self.callback = callback
        self.max_clusters = max_clusters

    def fit(self, X, y=None):
        """Grow the tree of splits on X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points; float32 is used internally (float64 and integers are accepted).
        y : ignored

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad input: NaN/inf, fewer points than clusters, identical points, ...
        FitCancelled
            The callback asked to stop; the estimator stays unfitted.
        """
        self._validate_params()
        try:
            self._fit(X)
        except BaseException:
            self._forget_fit()
            raise
        return self

    def fit_predict(self, X, y=None):
        """Fit on X and return ``labels_``, shape (n_samples,)."""
        return self.fit(X).labels_

    def predict(self, X):
        """Route each point down the learned tree to a leaf.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)

        Returns
        -------
        labels : np.ndarray of int64, shape (n_samples,)
        """
        check_is_fitted(self, "tree_")
        checked = check_new_points(X, self.n_features_in_)
        validate_data(self, X, skip_check_array=True, reset=False)
        X = checked
        points = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        labels = np.empty(len(points), dtype=np.int64)
        stack = [(0, np.arange(len(points)))]
        while stack:
            node_id, rows = stack.pop()
            node = self.tree_[node_id]
            if node.is_leaf:
                labels[rows] = node.label
                continue
            if len(rows) == 0:
                continue
            side = node.surface.assign(points[rows]).numpy()
            stack.append((node.children[0], rows[~side]))
            stack.append((node.children[1], rows[side]))
        return labels

    def _fit(self, X):
        auto = self.n_clusters == "auto"
        n_clusters = self.max_clusters if auto else self.n_clusters
        X = check_points(X, 1 if auto else n_clusters)
        validate_data(self, X, skip_check_array=True, reset=True)
        device = resolve_device(self.device)
        rng = check_random_state(self.random_state)
        generator = torch.Generator().manual_seed(int(rng.randint(2**31 - 1)))
        criterion = make_criterion(self.criterion)
        settings = SplitSettings(
            surface=self.surface,
            hidden=self.hidden,
            optimizer=self.optimizer,
            learning_rate=float(self.learning_rate),
            max_epochs=self.max_epochs,
            tol=float(self.tol),
            n_restarts=self.n_restarts,
            batch_size=self.batch_size,
            n_neighbors=self.n_neighbors,
        )
        accept = SplitAcceptance(seed=generator.initial_seed()) if auto else None
        reporter = Reporter(self.callback, n_clusters - 1)
        reporter(
            "start",
            f"clustering {len(X):,} points of {X.shape[1]} features into "
            f"{'at most ' if auto else ''}{n_clusters} clusters on {device}",
        )
        source = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).to(device)
        tree = grow_tree(
            source, n_clusters, criterion, settings, generator, rng, reporter, accept
        )
        if auto:
            tree, tests = cut_tree(tree, accept.results)

        labels = np.empty(len(X), dtype=np.int64)
        leaves = [node for node in tree if node.is_leaf]
        for node in leaves:
            labels[node.members] = node.label
        reporter("done", f"{len(leaves)} clusters")
        self.tree_ = tree
        self.labels_ = labels
        self.criterion_ = float(sum(node.criterion for node in leaves))
        self.n_clusters_ = len(leaves)
        if auto:
            self.split_tests_ = tests
        return self

    def _forget_fit(self):
        for name in [
            key for key in vars(self) if key.endswith("_") and not key.startswith("_")
        ]:
            delattr(self, name)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
