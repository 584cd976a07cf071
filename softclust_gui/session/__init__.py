"""The state the user edits, saved as it changes, and the two places that write files.

No Qt here. Public API:

Session (``model``)
    ``Session(source, images: Sequence[ImageEntry], features=None)``; images are
    ``ImageEntry(path, metadata: dict, class_name=None, companions=())``, their positions
    are their ids. Reading: ``node(id) -> NodeState(parent, children, name, images,
    named_by_user, settings)``, ``node_ids()``, ``leaves()``, ``count(id)``,
    ``images_of(id, recursive=True)``, ``node_of(image)``, ``tree_path(id)``,
    ``excluded``. Edits (each undoable, each returns a ``Change`` or None when nothing
    changed): ``recluster(id, n_clusters, criterion, surface, random_state, callback)``
    (``n_clusters=AUTO``: as many as the engine's split test supports, up to
    ``max_clusters``),
    ``split(id, n_clusters=2)``, ``rename(id, name)``, ``merge(target, sources)``,
    ``move_images(images, target)``, ``new_cluster(parent, name=None) -> id``,
    ``exclude(images)``, ``include(images)``; ``undo()``, ``redo()``, ``can_undo``,
    ``undo_label``. Off the GUI thread: ``fit_node(id, ...) -> FitResult`` (no change),
    then ``apply_fit(result)`` on the GUI thread. ``observers``: callables receiving
    each ``Change(kind, label, added, removed, changed, images, exclusion)``.
    ``set_features(array)`` / ``set_features_for(paths, array)``,
    ``representative(id)``, ``export_items(flat=False)``, ``save_error``.
    Bad edits raise ``SessionError`` (a ValueError) and change nothing.

Saving (``store``)
    ``save_session(session, path=None) -> SessionStore`` writes it and saves every later
    edit; ``find_saved_session(source) -> Path | None``;
    ``describe_saved_session(path) -> SavedSessionInfo(path, source, images, clusters,
    saved_at)`` for a "resume?" prompt; ``open_session(path, features=None) -> Session``;
    ``SessionFileError`` for newer, damaged or foreign files.

Export and offload (``export``, ``offload``)
    ``export(items: Iterable[ExportItem], dest, *, move=False, dry_run=False,
    progress=None) -> ExportReport``; ``offload(card, dest, *, progress=None) ->
    ExportReport``. ``progress(TransferProgress)`` returning True cancels.
"""

from softclust_gui.session.export import (
    MANIFEST_NAME,
    ExportItem,
    ExportReport,
    FileResult,
    Status,
    TransferProgress,
    export,
)
from softclust_gui.session.model import (
    AUTO,
    MAX_AUTO_CLUSTERS,
    ROOT,
    Change,
    ClusterSettings,
    FitResult,
    ImageEntry,
    NodeState,
    Session,
    SessionError,
)
from softclust_gui.session.names import safe_name
from softclust_gui.session.offload import offload
from softclust_gui.session.store import (
    SavedSessionInfo,
    SessionFileError,
    SessionStore,
    describe_saved_session,
    find_saved_session,
    open_session,
    save_session,
    session_path_for,
)

__all__ = [
    "AUTO",
    "MANIFEST_NAME",
    "MAX_AUTO_CLUSTERS",
    "ROOT",
    "Change",
    "ClusterSettings",
    "ExportItem",
    "ExportReport",
    "FileResult",
    "FitResult",
    "ImageEntry",
    "NodeState",
    "SavedSessionInfo",
    "Session",
    "SessionError",
    "SessionFileError",
    "SessionStore",
    "Status",
    "TransferProgress",
    "describe_saved_session",
    "export",
    "find_saved_session",
    "offload",
    "open_session",
    "safe_name",
    "save_session",
    "session_path_for",
]
