"""Export sorted images into one folder per cluster, verified, resumable, never overwriting.

``export(items, dest)`` copies each item's file (and its companions) into the folder of its
cluster under ``dest``. Every copy is verified before it takes its final name
(``_transfer.copy_verified``); a name already taken by a different file gets a
deterministic suffix (``_2``, ``_3``...); a name already holding the same bytes counts as
done, so running an interrupted export again finishes it, and running it once more
changes nothing. Each finished file is appended to a journal at once, and the manifest
``softclust-manifest.csv`` is rewritten atomically at the end from the journal, the last
manifest and this run.

A full, read-only or vanished destination stops the export cleanly; a source file that
cannot be read is skipped. Either way the report says exactly which files were not
exported and why, and every file already exported stays as it is.
"""

from __future__ import annotations

import contextlib
import csv
import enum
import io
import logging
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from softclust_gui.session import _transfer
from softclust_gui.session._transfer import (
    DestinationError,
    SourceError,
    TransferCancelled,
)
from softclust_gui.session._units import Claims, Unit, make_unit, place_unit
from softclust_gui.session.names import collision_suffix, name_key, safe_name

logger = logging.getLogger(__name__)

MANIFEST_NAME = "softclust-manifest.csv"
JOURNAL_NAME = ".softclust-journal.csv"
MANIFEST_COLUMNS = (
    "source",
    "exported",
    "cluster",
    "tree_path",
    "size",
    "sha256",
    "capture_time",
    "gps",
)
MAX_FOLDER_BYTES = 100  # keeps nested paths short for Windows' 260-character limit
# NOTE: a tree nested very deep can still pass 260 characters on Windows without long
# path support; the flat layout avoids it.


@dataclass(frozen=True)
class ExportItem:
    """One image to export.

    Parameters
    ----------
    source : Path
        The image file; only ever read (and removed after a verified copy with ``move``).
    folder : tuple of str
        Cluster names from the export root down to the image's cluster, as the user named
        them: ``("Buildings", "Roofs")`` nested, ``("Roofs",)`` flat. Made safe here.
    cluster_name, tree_path : str
        For the manifest: the cluster's name and its path in the split tree (``"1.2"``).
    capture_time, gps : str
        For the manifest, as text (ISO 8601 time; ``"lat,lon[,alt]"``), empty if unknown.
    companions : tuple of Path
        Files that travel with the image (``DJI_0001.DNG``); they share its target stem.
    """

    source: Path
    folder: tuple[str, ...]
    cluster_name: str = ""
    tree_path: str = ""
    capture_time: str = ""
    gps: str = ""
    companions: tuple[Path, ...] = ()


class Status(str, enum.Enum):
    COPIED = "copied"
    MOVED = "moved"
    ALREADY = "already exported"
    PLANNED = "would be written"
    SKIPPED = "skipped"
    NOT_ATTEMPTED = "not attempted"


DONE = {Status.COPIED, Status.MOVED, Status.ALREADY}


@dataclass
class FileResult:
    """What happened to one file (an image or a companion)."""

    source: Path
    target: Path | None
    status: Status
    reason: str = ""
    size: int | None = None
    sha256: str = ""
    item: ExportItem | None = None
    source_kept: str = ""  # with ``move``: why the source could not be removed


@dataclass(frozen=True)
class TransferProgress:
    """Progress of an export or offload; ``bytes_done`` counts bytes copied so far."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    current: Path | None


ProgressCallback = Callable[[TransferProgress], "bool | None"]


@dataclass
class ExportReport:
    """The outcome of one export run, file by file."""

    dest: Path
    dry_run: bool
    action: str = "Export"
    results: list[FileResult] = field(default_factory=list)
    stopped: str = ""  # why the run stopped early, empty if it did not
    cancelled: bool = False
    manifest: Path | None = None
    manifest_error: str = ""
    bytes_needed: int = 0  # bytes still to copy when the run started (estimate)
    bytes_free: int | None = None  # free space at the destination then, if known

    @property
    def exported(self) -> list[FileResult]:
        return [r for r in self.results if r.status in DONE]

    @property
    def not_exported(self) -> list[FileResult]:
        return [r for r in self.results if r.status in {Status.SKIPPED, Status.NOT_ATTEMPTED}]

    @property
    def kept_sources(self) -> list[FileResult]:
        """Files exported by a move whose source could not be removed."""
        return [r for r in self.results if r.source_kept]

    @property
    def complete(self) -> bool:
        return not self.not_exported and not self.stopped and not self.cancelled

    def count(self, status: Status) -> int:
        return sum(r.status is status for r in self.results)

    def _label(self, status: Status) -> str:
        if status is Status.ALREADY and self.action == "Offload":
            return "already there"
        return status.value

    def summary(self) -> str:
        """A few lines a person can read: counts, then every file not exported and why."""
        shown = [s for s in Status if self.count(s)] or [Status.COPIED]
        counts = ", ".join(f"{self.count(s)} {self._label(s)}" for s in shown)
        lines = [f"{self.action} to {self.dest}: {counts}."]
        if self.cancelled:
            lines.append("Cancelled before the end.")
        if self.stopped:
            lines.append(f"Stopped: {self.stopped}")
        for result in self.not_exported:
            lines.append(f"  not exported: {result.source} ({result.reason})")
        for result in self.kept_sources:
            lines.append(f"  source kept: {result.source} ({result.source_kept})")
        if self.manifest_error:
            lines.append(f"Manifest not written: {self.manifest_error}")
        if self.dry_run and self.bytes_free is not None:
            lines.append(
                f"Needs {format_bytes(self.bytes_needed)}; "
                f"{format_bytes(self.bytes_free)} free at the destination."
            )
        return "\n".join(lines)


def format_bytes(count: int) -> str:
    """``"4.2 GB"``: decimal units, as file managers show sizes."""
    value = float(count)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} bytes"


# --- planning ---------------------------------------------------------------------------


def plan_folders(folders: Iterable[tuple[str, ...]]) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Safe, unique relative folder paths for cluster paths, decided in a fixed order.

    Two clusters whose names become equal once made safe (``"a:b"`` and ``"a_b"``, or
    ``"Roof"`` and ``"roof"`` on a case-insensitive disk) get ``_2``... in sorted order.
    """
    mapping: dict[tuple[str, ...], tuple[str, ...]] = {(): ()}
    used: dict[tuple[str, ...], set[str]] = {
        (): {name_key(MANIFEST_NAME), name_key(JOURNAL_NAME)}
    }
    prefixes = sorted({f[:i] for f in folders for i in range(1, len(f) + 1)})
    for prefix in prefixes:
        parent = mapping[prefix[:-1]]
        siblings = used.setdefault(parent, set())
        for attempt in range(1, 10_000):
            name = safe_name(
                prefix[-1], max_bytes=MAX_FOLDER_BYTES, suffix=collision_suffix(attempt)
            )
            if name_key(name) not in siblings and not _transfer.is_temp_name(name):
                break
        siblings.add(name_key(name))
        mapping[prefix] = (*parent, name)
    return mapping


def _ordered(items: list[ExportItem], folders: dict) -> list[ExportItem]:
    # Fixed order so that collision suffixes go to the same files on every run.
    return sorted(
        items, key=lambda i: (folders[i.folder], name_key(i.source.name), os.fspath(i.source))
    )


# --- the journal and the manifest ---------------------------------------------------------


def _row(result: FileResult, dest: Path) -> dict[str, str]:
    item = result.item or ExportItem(result.source, ())
    return {
        "source": os.fspath(result.source),
        "exported": result.target.relative_to(dest).as_posix() if result.target else "",
        "cluster": item.cluster_name,
        "tree_path": item.tree_path,
        "size": "" if result.size is None else str(result.size),
        "sha256": result.sha256,
        "capture_time": item.capture_time,
        "gps": item.gps,
    }


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Rows of a manifest or journal; a missing, cut-off or foreign file gives what it can."""
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        complete = (
            None not in row and None not in row.values() and len(row.get("sha256") or "") == 64
        )
        if complete and row.get("exported") and (row.get("size") or "").isdigit():
            rows.append(row)
    return rows


class _Journal:
    """Appends one CSV row per finished file; with ``durable``, flushed to the device.

    A copy needs no durable journal (a rerun finds its files by hash); a move does, since
    its sources are gone once moved.
    """

    def __init__(self, path: Path, durable: bool):
        self.path = path
        self.durable = durable
        self.handle = None

    def append(self, row: dict[str, str]) -> None:
        if self.handle is None:
            new = not self.path.exists() or self.path.stat().st_size == 0
            cut = not new and not self.path.read_bytes().endswith(b"\n")
            self.handle = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115
            if new:
                csv.writer(self.handle).writerow(MANIFEST_COLUMNS)
            elif cut:  # a killed run left half a line: end it so it reads as damaged
                self.handle.write("\r\n")
        csv.writer(self.handle).writerow([row[c] for c in MANIFEST_COLUMNS])
        self.handle.flush()
        if self.durable:
            os.fsync(self.handle.fileno())

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync, then rename over it."""
    temp = path.parent / f"{_transfer.TEMP_PREFIX}{path.name}{_transfer.TEMP_SUFFIX}"
    try:
        with open(temp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _manifest_text(rows: Iterable[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


# --- the run ------------------------------------------------------------------------------


class _Run:
    def __init__(self, items, dest: Path, move: bool, dry_run: bool, progress):
        self.dest = dest
        self.move = move
        self.dry_run = dry_run
        self.progress = progress
        self.report = ExportReport(dest=dest, dry_run=dry_run)
        self.claims = Claims()
        self.folders = plan_folders(i.folder for i in items)
        self.items = _ordered(list(items), self.folders)
        self.files_total = sum(1 + len(i.companions) for i in self.items)
        self.bytes_total = sum(_size_or_zero(p) for i in self.items for p in _paths(i))
        self.files_done = 0
        self.bytes_done = 0
        self.previous = self._previous_rows()
        self.by_source: dict[str, list[dict[str, str]]] = {}
        for row in self.previous.values():
            self.by_source.setdefault(row["source"], []).append(row)
        self.journal = _Journal(dest / JOURNAL_NAME, durable=move)
        self.device: int | None = None
        self.prepared: set[Path] = set()  # folders created and cleaned in this run

    def _previous_rows(self) -> dict[str, dict[str, str]]:
        rows = read_manifest(self.dest / MANIFEST_NAME) + read_manifest(
            self.dest / JOURNAL_NAME
        )
        return {row["exported"]: row for row in rows}

    def _tick(self, current: Path | None, nbytes: int = 0) -> bool:
        self.bytes_done += nbytes
        if self.progress is None:
            return False
        state = TransferProgress(
            self.files_done, self.files_total, self.bytes_done, self.bytes_total, current
        )
        return bool(self.progress(state))

    def _bytes_still_needed(self) -> int:
        """Bytes of the files that no earlier run recorded as exported (an estimate)."""
        done = {
            row["source"]
            for row in self.previous.values()
            if _size_or_zero(self.dest / row["exported"]) == int(row["size"])
        }
        return sum(
            _size_or_zero(p) for i in self.items for p in _paths(i) if os.fspath(p) not in done
        )

    def _check_space(self, require_space: bool) -> None:
        self.report.bytes_needed = self._bytes_still_needed()
        probe = self.dest if self.dest.exists() else _existing_parent(self.dest)
        try:
            self.report.bytes_free = shutil.disk_usage(probe).free
        except OSError:
            return
        short = self.report.bytes_needed > self.report.bytes_free
        if short and require_space and not self.dry_run:
            raise DestinationError(
                f"not enough space at {self.dest}: the export needs "
                f"{format_bytes(self.report.bytes_needed)} and "
                f"{format_bytes(self.report.bytes_free)} is free; free some space or choose "
                "another folder"
            )

    def run(self, require_space: bool = True) -> ExportReport:
        self._check_space(require_space)
        if not self.dry_run:
            _transfer.ensure_folder(self.dest)
            self._check_same_device()
            # NOTE: two exports into the same folder at once would remove each other's
            # temporary files here; the app runs one export at a time.
            _transfer.remove_stale_temps(self.dest)
        for index, item in enumerate(self.items):
            if self._tick(item.source):
                self.report.cancelled = True
                self._not_attempted(self.items[index:], "the export was cancelled")
                break
            try:
                self._export_item(item)
            except TransferCancelled:
                self.report.cancelled = True
                self._not_attempted(self.items[index:], "the export was cancelled")
                break
            except DestinationError as exc:
                self.report.stopped = str(exc)
                logger.error("Export stopped: %s", exc)
                self._not_attempted(self.items[index:], str(exc))
                break
        self.journal.close()
        for folder in self.prepared:
            _transfer.fsync_folder(folder)
        if not self.dry_run:
            self._write_manifest()
        return self.report

    def _not_attempted(self, items: list[ExportItem], reason: str) -> None:
        done = {os.fspath(r.source) for r in self.report.results}
        for item in items:
            for path in _paths(item):
                if os.fspath(path) not in done:
                    self.report.results.append(
                        FileResult(path, None, Status.NOT_ATTEMPTED, reason, item=item)
                    )

    def _check_same_device(self) -> None:
        """Stop if the destination vanished or is now another disk (a drive unplugged)."""
        try:
            device = os.stat(self.dest).st_dev
        except OSError:
            device = None
        if device is None or not self.dest.is_dir():
            raise DestinationError(f"the destination {self.dest} vanished")
        if self.device is None:
            self.device = device
        elif device != self.device:
            raise DestinationError(
                f"the destination {self.dest} is no longer on the same disk (was the drive "
                "unplugged?); nothing more is written there"
            )

    def _folder(self, item: ExportItem) -> Path:
        folder = self.dest.joinpath(*self.folders[item.folder])
        if not self.dry_run:
            self._check_same_device()
            if folder not in self.prepared:
                _transfer.ensure_folder(folder)
                _transfer.remove_stale_temps(folder)
                self.prepared.add(folder)
        return folder

    def _export_item(self, item: ExportItem) -> None:
        try:
            folder = self._folder(item)
        except DestinationError as exc:
            if exc.fatal:
                raise
            self._skip(item, str(exc))  # e.g. a file where the folder should be
            return
        unit = make_unit(item.source, item.companions)
        if self._resume_moved(item, unit, folder):
            return
        try:
            place_unit(unit, folder, self.claims)
        except SourceError as exc:
            self._skip(item, str(exc))
            return
        for member in unit.members:
            result = self._transfer_member(item, member)
            self.report.results.append(result)
            self.files_done += 1
            if result.status in DONE and not self.dry_run:
                self._journal(result)

    def _journal(self, result: FileResult) -> None:
        try:
            self.journal.append(_row(result, self.dest))
        except OSError as exc:
            self.journal.close()
            raise DestinationError(
                f"cannot write the export journal: {_transfer.describe_os_error(exc)}"
            ) from exc

    def _skip(self, item: ExportItem, reason: str) -> None:
        logger.warning("Skipped %s: %s", item.source, reason)
        for path in _paths(item):
            self.report.results.append(
                FileResult(path, None, Status.SKIPPED, reason, item=item)
            )
            self.files_done += 1

    def _resume_moved(self, item: ExportItem, unit: Unit, folder: Path) -> bool:
        """An earlier ``move`` run already moved this image: count it as exported."""
        if item.source.exists() or not self.previous:
            return False
        for row in self.by_source.get(os.fspath(item.source), []):
            target = self.dest / row["exported"]
            if target.parent != folder or self.claims.has(target):
                continue
            if _size_or_zero(target) == int(row["size"] or -1):
                self.claims.add(target)
                size = int(row["size"])
                reason = "moved by an earlier run"
                result = FileResult(
                    item.source, target, Status.ALREADY, reason, size, row["sha256"], item
                )
                self.report.results.append(result)
                self.files_done += 1 + len(item.companions)
                return True
        return False

    def _transfer_member(self, item: ExportItem, member) -> FileResult:
        target = member.target
        if self.dry_run:
            status = Status.ALREADY if member.identical else Status.PLANNED
            return FileResult(member.source, target, status, item=item)
        try:
            if member.identical:
                fp = member.fingerprint
                status = Status.ALREADY
            else:
                fp = self._copy(member.source, target)
                status = Status.COPIED
        except SourceError as exc:
            logger.warning("Skipped %s: %s", member.source, exc)
            return FileResult(member.source, None, Status.SKIPPED, str(exc), item=item)
        except DestinationError as exc:
            if exc.fatal:
                raise
            return FileResult(member.source, None, Status.SKIPPED, str(exc), item=item)
        result = FileResult(member.source, target, status, "", fp.size, fp.sha256, item)
        if self.move:
            self._remove_source(result)
        return result

    def _remove_source(self, result: FileResult) -> None:
        """Delete a source whose verified copy is on the disk; a failure keeps it."""
        _transfer.fsync_folder(result.target.parent)  # the copy's name is durable first
        try:
            os.unlink(result.source)
        except OSError as exc:
            result.source_kept = (
                f"copied and verified, but the source could not be removed: "
                f"{_transfer.describe_os_error(exc)}"
            )
            logger.warning("Kept %s: %s", result.source, result.source_kept)
            return
        result.status = Status.MOVED

    def _copy(self, source: Path, target: Path):
        try:
            # A move deletes the source next: its copy's name must be on the disk first.
            return _transfer.copy_verified(
                source, target, lambda n: self._tick(source, n), sync_folder=self.move
            )
        except FileExistsError as exc:
            # Something else wrote that name after it was chosen: never overwrite.
            raise DestinationError(
                f"{target} appeared while exporting; not overwritten", fatal=False
            ) from exc

    def _write_manifest(self) -> None:
        try:
            self._check_same_device()
        except DestinationError as exc:
            self.report.manifest_error = str(exc)
            return
        rows = {rel: row for rel, row in self.previous.items() if (self.dest / rel).exists()}
        for result in self.report.exported:
            row = _row(result, self.dest)
            rows[row["exported"]] = row
        path = self.dest / MANIFEST_NAME
        try:
            write_atomically(path, _manifest_text(rows[k] for k in sorted(rows)))
            (self.dest / JOURNAL_NAME).unlink(missing_ok=True)
            self.report.manifest = path
        except OSError as exc:
            # The journal stays; the next run rebuilds the manifest from it.
            self.report.manifest_error = _transfer.describe_os_error(exc)
            logger.error("Cannot write the manifest %s: %s", path, exc)


def _existing_parent(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path.cwd()


def _paths(item: ExportItem) -> list[Path]:
    return [item.source, *item.companions]


def _size_or_zero(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def export(
    items: Iterable[ExportItem],
    dest: Path | str,
    *,
    move: bool = False,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    require_space: bool = True,
) -> ExportReport:
    """Export ``items`` into cluster folders under ``dest``.

    Parameters
    ----------
    items : iterable of ExportItem
        The images, each with its cluster folder path.
    dest : Path or str
        Export root; created if missing. Its existing files are never overwritten.
    move : bool
        Remove each source file after its copy is verified (and only then).
    dry_run : bool
        Decide every target name and report it (status ``PLANNED``) without writing.
    progress : callable, optional
        Called with a ``TransferProgress`` before each file and after each copied MiB;
        returning True cancels the export after the current file's temporary copy is
        removed.
    require_space : bool
        Refuse to start when the destination has less free space than the files still
        to copy (the report says how much is needed and free). With False, copy what
        fits and stop cleanly when the disk is full.

    Returns
    -------
    ExportReport
        Per-file results; ``not_exported`` lists every file left behind with its reason.
        A destination that cannot be created gives a report with ``stopped`` set.
    """
    run = _Run(list(items), Path(dest), move, dry_run, progress)
    try:
        return run.run(require_space)
    except DestinationError as exc:
        run.journal.close()
        run.report.stopped = str(exc)
        run._not_attempted(run.items, str(exc))
        return run.report
