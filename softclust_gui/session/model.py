"""The state a user edits: images, the tree of clusters, names, moves and exclusions.

A ``Session`` holds the images of one source (path, metadata, an optional classifier
class name), the tree of clusters and the set of images left out of the export. Every
edit is a command recorded as the before and after states of the nodes it touched, so
undo and redo restore exactly what was there, node ids included. After each edit the
session notifies its observers (``session.observers``, callables taking a ``Change``) and
saves the touched rows to its store, if it has one.

Node ids are stable integers that are never reused; the root is ``ROOT`` (0). Each image
sits in exactly one node (usually a leaf); a node's count includes its subtree.

A session is not thread-safe: edit it from one thread. Long clustering runs go through
``fit_node`` (read-only, any thread) and ``apply_fit`` (an edit, on the editing thread).
The undo history lives in memory only; a resumed session starts with an empty one.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from softclust_gui.session.export import ExportItem
from softclust_gui.session.names import name_key

logger = logging.getLogger(__name__)

ROOT = 0
ROOT_NAME = "All images"
NEW_CLUSTER_NAME = "New cluster"
# A classifier's class names a cluster when at least this share of its images agree.
DOMINANT_SHARE = 0.4
MAX_UNDO = 200


class SessionError(ValueError):
    """An edit that cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True)
class ImageEntry:
    """One image of the session.

    Attributes
    ----------
    path : Path
        The source file.
    metadata : dict
        JSON-friendly metadata (``captured_at``, ``latitude``, ``longitude``,
        ``altitude``... as the imaging layer reads them).
    class_name : str or None
        The top class a classifier gave this image, used for default cluster names.
    companions : tuple of Path
        Files that travel with the image on export (``DJI_0001.DNG``).
    """

    path: Path
    metadata: dict = field(default_factory=dict)
    class_name: str | None = None
    companions: tuple[Path, ...] = ()

    @classmethod
    def from_record(cls, record) -> ImageEntry:
        """The entry of a scanned image (an ``imaging.ImageRecord``)."""
        metadata = record.metadata.to_dict() if record.metadata is not None else {}
        return cls(record.path, metadata, None, tuple(record.companions))


@dataclass(frozen=True)
class NodeState:
    """One cluster as stored: the value undo and redo put back."""

    parent: int | None
    children: tuple[int, ...]
    name: str
    images: tuple[int, ...]  # images held directly, sorted
    named_by_user: bool = False
    settings: dict | None = None  # how this node's subtree was clustered


@dataclass(frozen=True)
class Change:
    """What one edit, undo or redo changed; an item model maps it to its signals.

    ``added``/``removed`` nodes appeared or disappeared; ``changed`` nodes kept their id
    but their name, children or images changed (parents of added and removed nodes are
    in ``changed``). ``images`` are the images that moved; ``exclusion`` those whose
    exclusion flag flipped.
    """

    kind: str  # "edit", "undo", "redo", "load"
    label: str
    added: frozenset[int] = frozenset()
    removed: frozenset[int] = frozenset()
    changed: frozenset[int] = frozenset()
    images: frozenset[int] = frozenset()
    exclusion: frozenset[int] = frozenset()


@dataclass
class _Edit:
    label: str
    before: dict[int, NodeState | None] = field(default_factory=dict)
    after: dict[int, NodeState | None] = field(default_factory=dict)
    excluded: frozenset[int] = frozenset()  # flipped to excluded by the edit
    included: frozenset[int] = frozenset()  # flipped to included by the edit


AUTO = "auto"  # n_clusters: as many clusters as the engine's split test supports
MAX_AUTO_CLUSTERS = 20


@dataclass(frozen=True)
class ClusterSettings:
    """Parameters of one engine run over a node's images.

    ``n_clusters`` is a number of leaves, or ``AUTO``: the engine grows the tree to
    ``max_clusters`` leaves and keeps only the splits its test finds supported.
    """

    n_clusters: int | str = 8
    criterion: str = "compact"
    surface: str = "linear"
    random_state: int | None = 0
    max_clusters: int = MAX_AUTO_CLUSTERS

    @property
    def automatic(self) -> bool:
        return self.n_clusters == AUTO

    def as_dict(self) -> dict:
        settings = {
            "n_clusters": self.n_clusters,
            "criterion": self.criterion,
            "surface": self.surface,
            "random_state": self.random_state,
        }
        if self.automatic:
            settings["max_clusters"] = self.max_clusters
        return settings


@dataclass(frozen=True)
class FitResult:
    """An engine tree fitted on one node's images, ready for ``Session.apply_fit``."""

    node_id: int
    members: np.ndarray  # image ids, sorted, in the row order given to the engine
    tree: list
    settings: ClusterSettings


class Session:
    """Images, clusters and edits of one source; see the module docstring.

    Parameters
    ----------
    source : Path
        The folder or card the images come from (identifies the saved session).
    images : sequence of ImageEntry
        The images; their positions are their ids.
    features : np.ndarray, shape (n_images, d), optional
        Feature vectors aligned with ``images``; needed to split or re-cluster.
    """

    def __init__(self, source: Path, images: Sequence[ImageEntry], features=None):
        self.source = Path(source)
        self.images: tuple[ImageEntry, ...] = tuple(images)
        self.features: np.ndarray | None = None
        self.observers: list[Callable[[Change], None]] = []
        self.store = None  # a SessionStore once saved (see store.py)
        self._nodes: dict[int, NodeState] = {
            ROOT: NodeState(None, (), ROOT_NAME, tuple(range(len(self.images))))
        }
        self._image_node = np.zeros(len(self.images), dtype=np.int64)
        self._excluded: set[int] = set()
        self._next_id = 1
        self._undo: list[_Edit] = []
        self._redo: list[_Edit] = []
        self._current: _Edit | None = None
        self._counts: dict[int, int] | None = None
        self._recent_change: Change | None = None
        if features is not None:
            self.set_features(features)

    # --- reading --------------------------------------------------------------------

    def set_features(self, features) -> None:
        """Attach feature vectors, shape (n_images, d), aligned with ``images``."""
        array = np.asarray(features, dtype=np.float32)
        if array.ndim != 2 or array.shape[0] != len(self.images):
            raise SessionError(
                f"features must have one row per image: expected shape ({len(self.images)}, d),"
                f" got {array.shape}"
            )
        self.features = array

    def set_features_for(self, paths: Sequence[Path], features) -> None:
        """Attach features given in another order, matched to the images by path.

        Parameters
        ----------
        paths : sequence of Path
            The image of each row of ``features`` (e.g. a pipeline result's images).
        features : array, shape (len(paths), d)

        Raises ``SessionError`` naming up to five session images that have no row.
        """
        array = np.asarray(features, dtype=np.float32)
        if array.ndim != 2 or array.shape[0] != len(paths):
            raise SessionError(
                f"features must have one row per path: {len(paths)} paths, shape {array.shape}"
            )
        row_of = {Path(p): i for i, p in enumerate(paths)}
        missing = [e.path for e in self.images if e.path not in row_of]
        if missing:
            raise SessionError(
                f"{len(missing)} images of the session have no features, e.g. "
                f"{', '.join(map(str, missing[:5]))}; compute features for every image first"
            )
        self.features = array[[row_of[e.path] for e in self.images]]

    def representative(self, node_id: int) -> int | None:
        """The image closest to the mean of the node's images (its thumbnail), or None.

        Without features, the node's first image.
        """
        members = self.images_of(node_id)
        if not members:
            return None
        if self.features is None:
            return members[0]
        vectors = self.features[members]
        distances = ((vectors - vectors.mean(axis=0)) ** 2).sum(axis=1)
        return members[int(np.argmin(distances))]

    def node(self, node_id: int) -> NodeState:
        """The stored state of a node; raises ``SessionError`` for an unknown id."""
        try:
            return self._nodes[node_id]
        except KeyError:
            raise SessionError(f"there is no cluster with id {node_id}") from None

    def node_ids(self) -> list[int]:
        """Every node id, parents before children, siblings in order."""
        order, stack = [], [ROOT]
        while stack:
            node_id = stack.pop()
            order.append(node_id)
            stack.extend(reversed(self._nodes[node_id].children))
        return order

    def leaves(self) -> list[int]:
        return [n for n in self.node_ids() if not self._nodes[n].children]

    def name(self, node_id: int) -> str:
        return self.node(node_id).name

    def count(self, node_id: int) -> int:
        """Images in the node and its whole subtree."""
        if self._counts is None:
            counts: dict[int, int] = {}
            for nid in reversed(self.node_ids()):
                state = self._nodes[nid]
                counts[nid] = len(state.images) + sum(counts[c] for c in state.children)
            self._counts = counts
        self.node(node_id)
        return self._counts[node_id]

    def images_of(self, node_id: int, recursive: bool = True) -> list[int]:
        """Sorted ids of the images in the node (and, by default, its subtree)."""
        if not recursive:
            return list(self.node(node_id).images)
        found: list[int] = []
        for nid in self._subtree(node_id):
            found.extend(self._nodes[nid].images)
        return sorted(found)

    def node_of(self, image_id: int) -> int:
        return int(self._image_node[image_id])

    def tree_path(self, node_id: int) -> str:
        """Position in the tree: ``""`` for the root, ``"1"``, ``"1.2"`` below it."""
        parts = []
        while node_id != ROOT:
            parent = self.node(node_id).parent
            parts.append(str(self._nodes[parent].children.index(node_id) + 1))
            node_id = parent
        return ".".join(reversed(parts))

    def ancestors(self, node_id: int) -> list[int]:
        """From the root down to the node's parent."""
        chain = []
        parent = self.node(node_id).parent
        while parent is not None:
            chain.append(parent)
            parent = self._nodes[parent].parent
        return list(reversed(chain))

    @property
    def save_error(self) -> str:
        """Why the last autosave failed (shown to the user), empty when all is saved."""
        return self.store.error if self.store is not None else ""

    @property
    def excluded(self) -> frozenset[int]:
        return frozenset(self._excluded)

    def is_excluded(self, image_id: int) -> bool:
        return image_id in self._excluded

    def _subtree(self, node_id: int) -> list[int]:
        order, stack = [], [node_id]
        while stack:
            nid = stack.pop()
            order.append(nid)
            stack.extend(self._nodes[nid].children)
        return order

    # --- undo and redo ---------------------------------------------------------------

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_label(self) -> str:
        return self._undo[-1].label if self._undo else ""

    @property
    def redo_label(self) -> str:
        return self._redo[-1].label if self._redo else ""

    def undo(self) -> Change:
        if not self._undo:
            raise SessionError("there is nothing to undo")
        edit = self._undo.pop()
        change = self._apply(edit.before, edit.included, edit.excluded, "undo", edit)
        self._redo.append(edit)
        return change

    def redo(self) -> Change:
        if not self._redo:
            raise SessionError("there is nothing to redo")
        edit = self._redo.pop()
        change = self._apply(edit.after, edit.excluded, edit.included, "redo", edit)
        self._undo.append(edit)
        return change

    def _apply(self, states, exclude, include, kind, edit) -> Change:
        for node_id, state in states.items():
            self._nodes.pop(node_id, None)
            if state is not None:
                self._nodes[node_id] = state
                self._image_node[list(state.images)] = node_id
        self._excluded.difference_update(include)
        self._excluded.update(exclude)
        change = self._change(kind, edit)
        self._after_change(change, states, exclude | include)
        return change

    def _change(self, kind: str, edit: _Edit) -> Change:
        added = {
            n for n, s in edit.after.items() if s is not None and edit.before.get(n) is None
        }
        removed = {
            n for n, s in edit.before.items() if s is not None and edit.after.get(n) is None
        }
        if kind == "undo":
            added, removed = removed, added
        changed = set(edit.before) - added - removed
        before, after = _holders(edit.before), _holders(edit.after)
        moved = {i for i in before.keys() | after.keys() if before.get(i) != after.get(i)}
        change = Change(
            kind,
            edit.label,
            frozenset(added),
            frozenset(removed),
            frozenset(changed),
            frozenset(moved),
            edit.excluded | edit.included,
        )
        self._recent_change = change
        return change

    def _after_change(self, change: Change, states, flipped) -> None:
        self._counts = None
        if self.store is not None:
            self.store.save_changes(self, states.keys(), flipped)
        for observer in list(self.observers):
            try:
                observer(change)
            except Exception:
                logger.exception("A session observer failed on %s", change.label)

    # --- recording edits -------------------------------------------------------------

    @contextmanager
    def _edit(self, label: str):
        """Record every node touched inside the block as one undoable edit."""
        if self._current is not None:
            raise RuntimeError("session edits cannot nest")
        edit = _Edit(label)
        self._current = edit
        excluded_before = set(self._excluded)
        try:
            yield edit
        except BaseException:
            # Put back what the failed edit had changed; nothing is recorded.
            self._current = None
            for node_id, state in edit.before.items():
                self._nodes.pop(node_id, None)
                if state is not None:
                    self._nodes[node_id] = state
                    self._image_node[list(state.images)] = node_id
            self._excluded = excluded_before
            self._counts = None
            raise
        self._current = None
        edit.after = {n: self._nodes.get(n) for n in edit.before}
        edit.excluded = frozenset(self._excluded - excluded_before)
        edit.included = frozenset(excluded_before - self._excluded)
        self._undo.append(edit)
        del self._undo[:-MAX_UNDO]
        self._redo.clear()
        change = self._change("edit", edit)
        self._after_change(change, edit.after, edit.excluded | edit.included)

    def _set(self, node_id: int, state: NodeState | None) -> None:
        """Replace (or with None delete) a node inside an edit, recording its old state."""
        edit = self._current
        if node_id not in edit.before:
            edit.before[node_id] = self._nodes.get(node_id)
        if state is None:
            self._nodes.pop(node_id, None)
        else:
            self._nodes[node_id] = state
            self._image_node[list(state.images)] = node_id

    def _update(self, node_id: int, **changes) -> None:
        self._set(node_id, replace(self._nodes[node_id], **changes))

    def _new_id(self) -> int:
        node_id = self._next_id
        self._next_id += 1
        return node_id

    # --- names ------------------------------------------------------------------------

    def _sibling_keys(self, parent: int | None, skip: int | None = None) -> set[str]:
        if parent is None:
            return set()
        return {
            name_key(self._nodes[c].name)
            for c in self._nodes[parent].children
            if c != skip and c in self._nodes
        }

    def _unique_name(self, wanted: str, parent: int | None, skip: int | None = None) -> str:
        taken = self._sibling_keys(parent, skip)
        name, attempt = wanted, 1
        while name_key(name) in taken:
            attempt += 1
            name = f"{wanted} {attempt}"
        return name

    def _default_name(self, image_ids: Iterable[int], path: str) -> str:
        classes = Counter(
            self.images[i].class_name for i in image_ids if self.images[i].class_name
        )
        total = sum(classes.values())
        if total:
            best, hits = classes.most_common(1)[0]
            if hits >= DOMINANT_SHARE * total:
                return best
        return path

    # --- edits --------------------------------------------------------------------------

    def rename(self, node_id: int, name: str) -> Change | None:
        """Give a cluster a new name, unique among its siblings (case-insensitive)."""
        state = self.node(node_id)
        clean = " ".join(name.split())
        if not clean:
            raise SessionError("a cluster name cannot be empty; type at least one character")
        if name_key(clean) in self._sibling_keys(state.parent, skip=node_id):
            raise SessionError(
                f"a cluster named {clean!r} already exists next to this one; choose another"
                " name"
            )
        if clean == state.name:
            return None
        with self._edit(f"Rename {state.name!r} to {clean!r}"):
            self._update(node_id, name=clean, named_by_user=True)
        return self._last_change

    def new_cluster(self, parent: int = ROOT, name: str | None = None) -> int:
        """Add an empty cluster under ``parent``; returns its id."""
        parent_state = self.node(parent)
        wanted = " ".join((name or NEW_CLUSTER_NAME).split()) or NEW_CLUSTER_NAME
        final = self._unique_name(wanted, parent)
        node_id = self._new_id()
        with self._edit(f"New cluster {final!r}"):
            self._set(node_id, NodeState(parent, (), final, (), named_by_user=name is not None))
            self._update(parent, children=(*parent_state.children, node_id))
        return node_id

    def move_images(self, image_ids: Iterable[int], target: int) -> Change | None:
        """Move images (from wherever they are) into the cluster ``target``."""
        ids = self._check_images(image_ids)
        target_state = self.node(target)
        moving = [i for i in ids if self.node_of(i) != target]
        if not moving:
            return None
        by_node: dict[int, set[int]] = {}
        for image_id in moving:
            by_node.setdefault(self.node_of(image_id), set()).add(image_id)
        label = f"Move {len(moving)} image{'s' * (len(moving) != 1)} to {target_state.name!r}"
        with self._edit(label):
            for node_id, leaving in by_node.items():
                kept = tuple(i for i in self._nodes[node_id].images if i not in leaving)
                self._update(node_id, images=kept)
            self._update(target, images=tuple(sorted((*target_state.images, *moving))))
        return self._last_change

    def merge(self, target: int, sources: Iterable[int]) -> Change:
        """Move every image of the ``sources`` subtrees into ``target``; remove the sources."""
        target_state = self.node(target)
        sources = list(dict.fromkeys(sources))
        for source in sources:
            self.node(source)
            if source == target:
                raise SessionError("a cluster cannot be merged into itself")
            if source == ROOT:
                raise SessionError(f"{ROOT_NAME!r} cannot be merged into another cluster")
            if source in self.ancestors(target):
                raise SessionError(
                    f"{self.name(source)!r} contains {target_state.name!r}; merge the other"
                    " way round"
                )
        if not sources:
            raise SessionError("choose at least one cluster to merge into the target")
        names = ", ".join(repr(self.name(s)) for s in sources)
        with self._edit(f"Merge {names} into {target_state.name!r}"):
            gathered = list(self._nodes[target].images)
            for source in sources:
                if source not in self._nodes:
                    continue  # inside another source already removed
                gathered.extend(self._remove_subtree(source))
            self._update(target, images=tuple(sorted(gathered)))
        return self._last_change

    def _remove_subtree(self, node_id: int) -> list[int]:
        """Delete a subtree inside an edit; returns the images it held."""
        held = []
        parent = self._nodes[node_id].parent
        for nid in self._subtree(node_id):
            held.extend(self._nodes[nid].images)
            self._set(nid, None)
        kids = tuple(c for c in self._nodes[parent].children if c != node_id)
        self._update(parent, children=kids)
        return held

    def exclude(self, image_ids: Iterable[int]) -> Change | None:
        """Leave images out of the export (they stay in their clusters)."""
        return self._set_excluded(image_ids, True)

    def include(self, image_ids: Iterable[int]) -> Change | None:
        """Put excluded images back into the export."""
        return self._set_excluded(image_ids, False)

    def _set_excluded(self, image_ids: Iterable[int], excluded: bool) -> Change | None:
        ids = [i for i in self._check_images(image_ids) if (i in self._excluded) != excluded]
        if not ids:
            return None
        verb = "Exclude" if excluded else "Include"
        with self._edit(f"{verb} {len(ids)} image{'s' * (len(ids) != 1)}"):
            if excluded:
                self._excluded.update(ids)
            else:
                self._excluded.difference_update(ids)
        return self._last_change

    def _check_images(self, image_ids: Iterable[int]) -> list[int]:
        ids = sorted({int(i) for i in image_ids})
        bad = [i for i in ids if not 0 <= i < len(self.images)]
        if bad:
            raise SessionError(
                f"image ids {bad[:5]} are out of range: this session has {len(self.images)}"
                " images (ids 0 to n-1)"
            )
        return ids

    # --- clustering -----------------------------------------------------------------

    def split(self, node_id: int, n_clusters: int = 2, **settings) -> Change:
        """Split a leaf cluster into ``n_clusters`` with the engine (see ``recluster``)."""
        self._check_splittable(node_id)
        return self.recluster(node_id, n_clusters=n_clusters, **settings)

    def _check_splittable(self, node_id: int) -> None:
        if self.node(node_id).children:
            raise SessionError(
                f"{self.name(node_id)!r} is already split; re-cluster it or split one of its"
                " clusters"
            )

    def recluster(self, node_id: int, n_clusters: int | str = 8, **settings) -> Change:
        """Replace a node's subtree by a new engine tree fitted on all of its images.

        Parameters
        ----------
        node_id : int
            The cluster to re-cluster (``ROOT`` for the first clustering).
        n_clusters : int or "auto"
            Leaves wanted below the node, or ``AUTO`` to let the engine's split test
            decide (at most ``max_clusters``).
        **settings
            ``criterion``, ``surface``, ``random_state``, ``max_clusters``, ``callback``:
            see ``fit_node``.

        Notes
        -----
        Fits on the calling thread (seconds to minutes). A GUI calls ``fit_node`` in a
        worker and ``apply_fit`` back on its own thread instead.
        """
        return self.apply_fit(self.fit_node(node_id, n_clusters, **settings))

    def fit_node(
        self,
        node_id: int,
        n_clusters: int | str = 8,
        criterion: str = "compact",
        surface: str = "linear",
        random_state: int | None = 0,
        callback=None,
        max_clusters: int = MAX_AUTO_CLUSTERS,
    ) -> FitResult:
        """Cluster a node's images with the engine, without changing the session.

        Safe to call from a worker thread while the session stays as it is; pass the
        result to ``apply_fit``.

        Parameters
        ----------
        node_id : int
            The cluster whose images (whole subtree) are clustered.
        n_clusters, criterion, surface, random_state, max_clusters
            Passed to ``HypersurfaceClustering`` (``max_clusters`` only with ``AUTO``).
        callback : callable, optional
            The engine's progress callback, given a ``FitProgress``; returning True
            raises ``FitCancelled``.
        """
        settings = ClusterSettings(n_clusters, criterion, surface, random_state, max_clusters)
        members = np.asarray(self.images_of(node_id), dtype=np.int64)
        tree = self._fit(node_id, members, settings, callback)
        return FitResult(node_id, members, tree, settings)

    def apply_fit(self, fit: FitResult) -> Change:
        """Replace the fitted node's subtree by the fit's tree, as one undoable edit.

        Raises ``SessionError`` if the node or its images changed since the fit started.
        """
        current = np.asarray(self.images_of(fit.node_id), dtype=np.int64)
        if not np.array_equal(current, fit.members):
            raise SessionError(
                f"{self.name(fit.node_id)!r} changed while it was being clustered "
                f"({fit.members.size} images then, {current.size} now); cluster it again"
            )
        name = repr(self.name(fit.node_id))
        label = (
            f"Cluster {name} automatically"
            if fit.settings.automatic
            else f"Cluster {name} into {fit.settings.n_clusters}"
        )
        with self._edit(label):
            for child in self._nodes[fit.node_id].children:
                self._remove_subtree(child)
            self._graft(fit.node_id, fit.tree, fit.members, fit.settings)
        return self._last_change

    def _fit(self, node_id: int, members: np.ndarray, settings: ClusterSettings, callback):
        from softclust_gui.engine import HypersurfaceClustering

        if self.features is None:
            raise SessionError(
                "no features are attached to this session: compute them (or load them from"
                " the cache) and call set_features before clustering"
            )
        _check_cluster_count(self.name(node_id), members.size, settings)
        model = HypersurfaceClustering(
            n_clusters=settings.n_clusters,
            criterion=settings.criterion,
            surface=settings.surface,
            random_state=settings.random_state,
            callback=callback,
            max_clusters=min(settings.max_clusters, members.size),
        )
        model.fit(self.features[members])
        if not model.tree_[0].children:
            reason = (
                "no split of its images finds two distinct groups; choose a number of"
                " clusters instead of automatic"
                if settings.automatic
                else "its images are too alike; try other settings"
            )
            raise SessionError(
                f"the engine could not split {self.name(node_id)!r} ({members.size} images):"
                f" {reason}"
            )
        return model.tree_

    def _graft(self, node_id: int, tree, members: np.ndarray, settings) -> None:
        """Attach an engine tree's nodes below ``node_id``; its leaves take the images."""
        tree_paths = {0: self.tree_path(node_id)}
        ids = {0: node_id}
        order = [0]
        while order:
            engine_id = order.pop(0)
            engine_node = tree[engine_id]
            our_id = ids[engine_id]
            kids = []
            for position, child in enumerate(engine_node.children, start=1):
                child_node = tree[child]
                new_id = self._new_id()
                ids[child] = new_id
                kids.append(new_id)
                base = tree_paths[engine_id]
                path = f"{base}.{position}" if base else str(position)
                tree_paths[child] = path
                held = members[child_node.members]
                name = self._default_name(held, path)
                images = tuple(int(i) for i in held) if not child_node.children else ()
                self._set(new_id, NodeState(our_id, (), name, images))
                order.append(child)
            if our_id == node_id:
                self._update(node_id, images=(), settings=settings.as_dict())
            self._update(our_id, children=tuple(kids))
            self._dedupe_children(our_id)

    def _dedupe_children(self, parent: int) -> None:
        seen: set[str] = set()
        for child in self._nodes[parent].children:
            state = self._nodes[child]
            name, attempt = state.name, 1
            while name_key(name) in seen:
                attempt += 1
                name = f"{state.name} {attempt}"
            seen.add(name_key(name))
            if name != state.name:
                self._update(child, name=name)

    @property
    def _last_change(self) -> Change:
        return self._recent_change

    # --- export and checks ------------------------------------------------------------

    def export_items(self, flat: bool = False) -> list[ExportItem]:
        """One ``ExportItem`` per image not excluded, in its cluster's folder.

        Nested: folders follow the tree below the root (the root's own images go to the
        export root). Flat: one folder per cluster holding images, named as the cluster.
        """
        items = []
        for node_id in self.node_ids():
            state = self._nodes[node_id]
            if not state.images:
                continue
            chain = [*self.ancestors(node_id)[1:], node_id] if node_id != ROOT else []
            folder = tuple(self._nodes[n].name for n in chain)
            if flat and folder:
                folder = folder[-1:]
            path = self.tree_path(node_id)
            for image_id in state.images:
                if image_id not in self._excluded:
                    items.append(self._export_item(image_id, folder, node_id, path))
        return items

    def _export_item(self, image_id: int, folder: tuple[str, ...], node_id: int, path: str):
        entry = self.images[image_id]
        meta = entry.metadata
        gps = ""
        if meta.get("latitude") is not None and meta.get("longitude") is not None:
            parts = [meta["latitude"], meta["longitude"]]
            if meta.get("altitude") is not None:
                parts.append(meta["altitude"])
            gps = ",".join(f"{float(v):.7g}" for v in parts)
        return ExportItem(
            entry.path,
            folder,
            cluster_name=self._nodes[node_id].name,
            tree_path=path,
            capture_time=str(meta.get("captured_at") or ""),
            gps=gps,
            companions=entry.companions,
        )

    def check_consistency(self) -> None:
        """Raise ``InconsistentSession`` naming the first broken invariant of the tree.

        Checked: every node reachable once from the root (no orphans, no cycles), parent
        and child links agree, sibling names unique, every image in exactly one node and
        the image index agreeing, exclusions in range, counts adding up.
        """
        nodes, n_images = self._nodes, len(self.images)
        _require(
            ROOT in nodes and nodes[ROOT].parent is None, "the root is missing or has a parent"
        )
        reachable, stack = [], [ROOT]
        while stack and len(reachable) <= len(nodes):
            node_id = stack.pop()
            reachable.append(node_id)
            for child in nodes[node_id].children:
                _require(child in nodes, f"node {node_id} lists a missing child {child}")
                stack.append(child)
        _require(len(reachable) == len(set(reachable)), "a node is reachable twice")
        orphans = sorted(set(nodes) - set(reachable))
        _require(not orphans, f"orphan nodes: {orphans[:5]}")
        seen = np.zeros(n_images, dtype=np.int64)
        for node_id, state in nodes.items():
            for child in state.children:
                _require(nodes[child].parent == node_id, f"node {child} has a wrong parent")
            keys = [name_key(nodes[c].name) for c in state.children]
            _require(len(keys) == len(set(keys)), f"children of node {node_id} share a name")
            images = list(state.images)
            _require(images == sorted(set(images)), f"images of node {node_id} not sorted")
            _require(
                all(0 <= i < n_images for i in images), f"node {node_id} holds unknown images"
            )
            seen[images] += 1
            _require(
                bool((self._image_node[images] == node_id).all()),
                f"the image index disagrees with node {node_id}",
            )
            _require(node_id < self._next_id, f"node id {node_id} is not below the next id")
        _require(bool((seen == 1).all()), "an image is in no node or in two")
        _require(self._excluded <= set(range(n_images)), "excluded image ids out of range")
        self._counts = None
        _require(self.count(ROOT) == n_images, "counts do not add up")


class InconsistentSession(AssertionError):
    """The tree broke an invariant (a bug, or a damaged session file)."""


def _require(condition: bool, message: str) -> None:
    # Explicit checks, not assert: they must also run under ``python -O``.
    if not condition:
        raise InconsistentSession(message)


def _holders(states: dict[int, NodeState | None]) -> dict[int, int]:
    """Image id -> the node holding it, over the given node states."""
    holders = {}
    for node_id, state in states.items():
        if state is not None:
            for image_id in state.images:
                holders[image_id] = node_id
    return holders


def restore_session(
    source: Path,
    images: Sequence[ImageEntry],
    nodes: dict[int, NodeState],
    excluded: Iterable[int],
    next_id: int,
) -> Session:
    """A session rebuilt from saved state, checked; raises ``AssertionError`` if broken."""
    session = Session(source, images)
    session._nodes = dict(nodes)
    for node_id, state in nodes.items():
        session._image_node[list(state.images)] = node_id
    session._excluded = set(excluded)
    session._next_id = max(next_id, max(nodes) + 1)
    session.check_consistency()
    return session


def _check_cluster_count(name: str, size: int, settings: ClusterSettings) -> None:
    """Raise ``SessionError`` when ``settings`` cannot split a cluster of ``size`` images."""
    wanted = settings.n_clusters
    if settings.automatic:
        if settings.max_clusters < 2:
            raise SessionError(f"max_clusters must be at least 2, got {settings.max_clusters}")
        wanted = 2
    elif not isinstance(wanted, int) or isinstance(wanted, bool) or wanted < 2:
        raise SessionError(
            f"n_clusters must be an int of at least 2 or {AUTO!r}, got {wanted!r}"
        )
    if size < wanted:
        raise SessionError(
            f"{name!r} holds {size} images: splitting it into {wanted} clusters needs at"
            f" least {wanted}"
        )
