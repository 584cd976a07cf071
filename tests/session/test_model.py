"""The session model: edits, undo and redo, names, invariants, with the real engine."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from softclust_gui.engine import FitCancelled
from softclust_gui.session.model import (
    AUTO,
    ROOT,
    ImageEntry,
    InconsistentSession,
    NodeState,
    Session,
    SessionError,
)

BLOBS = 4
PER_BLOB = 12


def snapshot(session: Session):
    return {n: session.node(n) for n in session.node_ids()}, session.excluded


@pytest.fixture
def blob_features():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, size=(BLOBS, 8)) * 6
    return np.concatenate([rng.normal(c, 0.3, size=(PER_BLOB, 8)) for c in centres])


def make_session(features, class_names=None) -> Session:
    n = len(features)
    names = class_names or [None] * n
    images = [
        ImageEntry(Path(f"/flight/{i // PER_BLOB}/DJI_{i:04d}.JPG"), {}, names[i])
        for i in range(n)
    ]
    session = Session(Path("/flight"), images, features)
    session.observers.append(lambda change: session.check_consistency())
    return session


@pytest.fixture
def clustered(blob_features) -> Session:
    session = make_session(blob_features)
    session.recluster(ROOT, n_clusters=BLOBS)
    return session


def blob_of(image_id: int) -> int:
    return image_id // PER_BLOB


def test_clustering_the_root_finds_the_blobs_and_names_leaves_by_path(clustered):
    leaves = clustered.leaves()
    assert len(leaves) == BLOBS
    groups = sorted(tuple(clustered.images_of(leaf)) for leaf in leaves)
    assert groups == [tuple(range(b * PER_BLOB, (b + 1) * PER_BLOB)) for b in range(BLOBS)]
    assert sorted(clustered.name(n) for n in leaves) == ["1.1", "1.2", "2.1", "2.2"]
    assert all(clustered.name(n) == clustered.tree_path(n) for n in clustered.node_ids()[1:])
    assert clustered.count(ROOT) == BLOBS * PER_BLOB
    assert clustered.node(ROOT).settings["n_clusters"] == BLOBS


def test_default_names_come_from_the_dominant_class_and_stay_unique(blob_features):
    classes = ["lakeside", "forest", "dam", "forest"]
    names = [classes[blob_of(i)] for i in range(len(blob_features))]
    session = make_session(blob_features, class_names=names)
    session.recluster(ROOT, n_clusters=BLOBS)
    for leaf in session.leaves():
        own_class = classes[blob_of(session.images_of(leaf)[0])]
        assert session.name(leaf) in {own_class, f"{own_class} 2"}
    for node_id in session.node_ids():
        kids = [session.name(c) for c in session.node(node_id).children]
        assert len(kids) == len(set(kids))


def test_siblings_of_one_class_are_numbered_and_mixed_clusters_use_the_path(blob_features):
    session = make_session(blob_features, class_names=["forest"] * len(blob_features))
    session.recluster(ROOT, n_clusters=2)
    assert [session.name(c) for c in session.node(ROOT).children] == ["forest", "forest 2"]

    mixed = [("a", "b", "c")[i % 3] for i in range(len(blob_features))]
    session = make_session(blob_features, class_names=mixed)
    session.recluster(ROOT, n_clusters=2)
    assert [session.name(c) for c in session.node(ROOT).children] == ["1", "2"]


def test_rename_is_undoable_and_names_stay_unique_among_siblings(clustered):
    first, second = clustered.node(ROOT).children
    clustered.rename(first, "  Roofs   north ")
    assert clustered.name(first) == "Roofs north"
    assert clustered.node(first).named_by_user
    with pytest.raises(SessionError, match="a cluster named 'roofs NORTH' already exists"):
        clustered.rename(second, "roofs NORTH")
    with pytest.raises(SessionError, match="cannot be empty"):
        clustered.rename(second, "   ")
    assert clustered.undo_label == "Rename '1' to 'Roofs north'"
    clustered.undo()
    assert clustered.name(first) == "1"
    clustered.redo()
    assert clustered.name(first) == "Roofs north"


def test_merge_then_undo_restores_the_same_nodes_and_ids(clustered):
    before = snapshot(clustered)
    left, right = clustered.node(ROOT).children
    change = clustered.merge(left, [right])

    assert clustered.node(ROOT).children == (left,)
    assert clustered.count(left) == BLOBS * PER_BLOB
    assert right in change.removed and left in change.changed
    assert len(change.images) == 2 * PER_BLOB
    with pytest.raises(SessionError, match="contains"):
        clustered.merge(clustered.node(left).children[0], [left])
    with pytest.raises(SessionError, match="into itself"):
        clustered.merge(left, [left])

    after = snapshot(clustered)
    undo = clustered.undo()
    assert snapshot(clustered) == before
    assert right in undo.added
    clustered.redo()
    assert snapshot(clustered) == after


def test_move_new_cluster_exclude_and_export_items(clustered):
    leaf = clustered.leaves()[0]
    fresh = clustered.new_cluster(ROOT)
    assert clustered.name(fresh) == "New cluster"
    assert clustered.name(clustered.new_cluster(ROOT)) == "New cluster 2"
    moved = clustered.images_of(leaf)[:3]
    change = clustered.move_images(moved, fresh)
    assert change.images == frozenset(moved)
    assert clustered.images_of(fresh) == moved
    assert all(clustered.node_of(i) == fresh for i in moved)
    clustered.exclude(moved[:1])
    assert clustered.move_images(moved, fresh) is None  # already there: no edit

    items = clustered.export_items()
    exported = {str(i.source): i for i in items}
    assert len(items) == BLOBS * PER_BLOB - 1
    assert str(clustered.images[moved[0]].path) not in exported
    assert exported[str(clustered.images[moved[1]].path)].folder == ("New cluster",)
    deepest = next(n for n in clustered.leaves() if clustered.tree_path(n) == "2.2")
    deep = clustered.images_of(deepest)[0]
    item = exported[str(clustered.images[deep].path)]
    assert len(item.folder) == 2 and item.tree_path == "2.2"
    assert {i.folder for i in clustered.export_items(flat=True)} == {
        (clustered.name(n),) for n in clustered.node_ids() if clustered.node(n).images
    }
    clustered.include(moved[:1])
    assert len(clustered.export_items()) == BLOBS * PER_BLOB
    with pytest.raises(SessionError, match=r"out of range: this session has 48 images"):
        clustered.exclude([48])


def test_split_a_leaf_further_and_refuse_splitting_an_internal_node(clustered):
    leaf = clustered.leaves()[0]
    path = clustered.tree_path(leaf)
    clustered.split(leaf, n_clusters=2)
    kids = clustered.node(leaf).children
    assert len(kids) == 2 and clustered.node(leaf).images == ()
    assert [clustered.name(k) for k in kids] == [f"{path}.1", f"{path}.2"]
    assert sum(clustered.count(k) for k in kids) == PER_BLOB
    with pytest.raises(SessionError, match="is already split; re-cluster it"):
        clustered.split(ROOT)
    clustered.undo()
    assert clustered.node(leaf).children == () and len(clustered.images_of(leaf)) == PER_BLOB


def test_too_few_images_to_split_says_how_many(clustered):
    leaf = clustered.leaves()[0]
    clustered.move_images(clustered.images_of(leaf)[1:], clustered.leaves()[1])
    with pytest.raises(SessionError, match=r"holds 1 images: splitting it into 2 clusters"):
        clustered.split(leaf)


def test_recluster_a_node_with_other_settings_and_undo(clustered):
    left = clustered.node(ROOT).children[0]
    before = snapshot(clustered)
    clustered.recluster(left, n_clusters=3, criterion="connected", surface="mlp")
    assert len([n for n in clustered.leaves() if n in clustered._subtree(left)]) == 3
    assert clustered.node(left).settings == {
        "n_clusters": 3, "criterion": "connected", "surface": "mlp", "random_state": 0,
    }  # fmt: skip
    assert clustered.count(left) == 2 * PER_BLOB
    clustered.undo()
    assert snapshot(clustered) == before


def test_automatic_clustering_finds_the_blobs_and_records_its_bound():
    # The split test needs a few dozen images a side to see two groups.
    per_blob = 100
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 1, size=(BLOBS, 8)) * 6
    features = np.concatenate([rng.normal(c, 0.3, size=(per_blob, 8)) for c in centres])
    session = make_session(features)
    session.recluster(ROOT, n_clusters=AUTO, max_clusters=10)
    leaves = session.leaves()
    assert len(leaves) == BLOBS
    blobs = [{i // per_blob for i in session.images_of(leaf)} for leaf in leaves]
    assert all(len(blob) == 1 for blob in blobs)
    assert session.node(ROOT).settings["n_clusters"] == AUTO
    assert session.node(ROOT).settings["max_clusters"] == 10
    assert session.undo_label == "Cluster 'All images' automatically"


def test_automatic_clustering_of_one_blob_says_to_choose_a_number(blob_features):
    session = make_session(blob_features[:PER_BLOB])
    with pytest.raises(SessionError, match="finds two distinct groups; choose a number"):
        session.recluster(ROOT, n_clusters=AUTO)
    assert session.leaves() == [ROOT] and not session.can_undo


@pytest.mark.parametrize(
    ("n_clusters", "message"),
    [(1, "n_clusters must be an int of at least 2 or 'auto', got 1"), ("many", "got 'many'")],
)
def test_a_bad_cluster_count_is_refused(blob_features, n_clusters, message):
    session = make_session(blob_features)
    with pytest.raises(SessionError, match=message):
        session.recluster(ROOT, n_clusters=n_clusters)


def test_a_cancelled_fit_leaves_the_session_unchanged(clustered):
    before = snapshot(clustered)
    undo_label = clustered.undo_label
    with pytest.raises(FitCancelled):
        clustered.recluster(ROOT, n_clusters=3, callback=lambda progress: True)
    assert snapshot(clustered) == before and clustered.undo_label == undo_label


def test_clustering_without_features_says_what_to_do():
    session = Session(Path("/x"), [ImageEntry(Path(f"/x/{i}.jpg")) for i in range(4)])
    with pytest.raises(SessionError, match="no features are attached"):
        session.recluster(ROOT, n_clusters=2)
    with pytest.raises(SessionError, match=r"expected shape \(4, d\), got \(3, 2\)"):
        session.set_features(np.zeros((3, 2)))


def test_random_edits_undo_to_the_start_and_redo_to_the_end(clustered):
    rng = np.random.default_rng(7)
    start = snapshot(clustered)
    states = [start]
    for step in range(60):
        nodes = clustered.node_ids()
        kind = rng.integers(5)
        if kind == 0:
            images = rng.choice(48, size=rng.integers(1, 6), replace=False)
            change = clustered.move_images(images.tolist(), int(rng.choice(nodes)))
        elif kind == 1:
            change = clustered.new_cluster(int(rng.choice(nodes)))
        elif kind == 2:
            change = clustered.exclude(rng.choice(48, size=3).tolist())
        elif kind == 3:
            change = clustered.include(rng.choice(48, size=3).tolist())
        else:
            node = int(rng.choice(nodes[1:])) if len(nodes) > 1 else None
            ok = node is not None and clustered.node(node).children == ()
            target = clustered.node(node).parent if ok else None
            change = clustered.merge(target, [node]) if ok else None
        if change is not None:
            states.append(snapshot(clustered))
        _ = step
    for expected in reversed(states[:-1]):
        clustered.undo()
        assert snapshot(clustered) == expected
    # The initial clustering itself is the first edit on the stack.
    assert snapshot(clustered) == start
    for expected in states[1:]:
        clustered.redo()
        assert snapshot(clustered) == expected
    assert not clustered.can_redo


def test_a_new_edit_clears_redo_and_ids_are_never_reused(clustered):
    first = clustered.new_cluster()
    clustered.undo()
    second = clustered.new_cluster()
    assert second != first and not clustered.can_redo
    with pytest.raises(SessionError, match="nothing to redo"):
        clustered.redo()


def test_a_fit_from_a_worker_applies_only_if_the_node_did_not_change(clustered):
    left, right = clustered.node(ROOT).children
    fit = clustered.fit_node(left, n_clusters=2)
    clustered.move_images(clustered.images_of(right)[:1], left)
    with pytest.raises(SessionError, match=r"changed while it was being clustered \(24"):
        clustered.apply_fit(fit)
    fresh = clustered.fit_node(left, n_clusters=2)
    change = clustered.apply_fit(fresh)
    assert clustered.count(left) == 2 * PER_BLOB + 1 and change.removed


def test_features_are_matched_by_path_and_missing_ones_are_named(blob_features):
    session = make_session(blob_features)
    order = np.random.default_rng(1).permutation(len(blob_features))
    shuffled_paths = [session.images[i].path for i in order]
    session.set_features_for(shuffled_paths, blob_features[order])
    assert np.allclose(session.features, blob_features)
    with pytest.raises(SessionError, match=r"1 images of the session have no features, e\.g\."):
        session.set_features_for(shuffled_paths[1:], blob_features[order][1:])


def test_the_representative_is_the_image_nearest_the_centre(clustered):
    leaf = clustered.leaves()[0]
    members = clustered.images_of(leaf)
    best = clustered.representative(leaf)
    centre = clustered.features[members].mean(axis=0)
    distances = {i: float(((clustered.features[i] - centre) ** 2).sum()) for i in members}
    assert distances[best] == min(distances.values())
    assert clustered.representative(clustered.new_cluster()) is None


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda s: s._nodes.update({99: NodeState(ROOT, (), "x", ())}),
            "orphan nodes: \\[99\\]",
        ),
        (
            lambda s: s._nodes.update({ROOT: replace(s.node(ROOT), images=(0,))}),
            "the image index disagrees|in no node or in two",
        ),
        (
            lambda s: s._nodes.update({ROOT: replace(s.node(ROOT), children=(1, 1))}),
            "reachable twice|share a name",
        ),
    ],
)
def test_consistency_check_names_what_is_broken(clustered, damage, message):
    clustered.check_consistency()
    damage(clustered)
    with pytest.raises(InconsistentSession, match=message):
        clustered.check_consistency()
