"""Choosing target names for an image and its companion files, never overwriting.

A *unit* is one image and the files that belong to it (``DJI_0001.JPG`` with
``DJI_0001.DNG``): they share a stem at the target, so a collision suffix applies to all
of them. The first candidate takes the source's own (made safe) name, the next ``_2``,
then ``_3``... A candidate is taken when each of its names is either free or already holds
a byte-identical copy of that member, and no earlier unit of the same run claimed it:
this is what makes a rerun finish a killed job without duplicates.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from softclust_gui.session._transfer import Fingerprint, SourceError, hash_file
from softclust_gui.session.names import (
    MAX_NAME_BYTES,
    collision_suffix,
    name_key,
    safe_name,
    split_ext,
)

_TAIL_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
MAX_ATTEMPTS = 10_000


@dataclass
class Member:
    """One file of a unit and, once placed, its target name and what to do with it."""

    source: Path
    tail: str  # what follows the shared stem: ".JPG", ".DNG", ".JPG.xmp"
    target: Path | None = None
    identical: bool = False  # the target already holds these exact bytes
    fingerprint: Fingerprint | None = None


@dataclass
class Unit:
    members: list[Member]
    stem: str

    @property
    def primary(self) -> Member:
        return self.members[0]


def make_unit(source: Path, companions: tuple[Path, ...] = ()) -> Unit:
    """A unit whose stem is ``source``'s; companions keep whatever follows that stem."""
    stem, ext = split_ext(source.name)
    members = [Member(source, ext)]
    for companion in companions:
        name = companion.name
        if name_key(name).startswith(name_key(stem)) and len(name) > len(stem):
            tail = name[len(stem) :]
        else:
            tail = split_ext(name)[1]
        members.append(Member(companion, tail))
    return Unit(members, stem)


@dataclass
class Claims:
    """Target paths already given to a unit in this run, compared as the disk would."""

    taken: set[str] = field(default_factory=set)

    @staticmethod
    def key(path: Path) -> str:
        return name_key(os.fspath(path))

    def has(self, path: Path) -> bool:
        return self.key(path) in self.taken

    def add(self, path: Path) -> None:
        self.taken.add(self.key(path))


def _candidate_names(unit: Unit, attempt: int) -> list[str]:
    suffix = collision_suffix(attempt)
    tails = [_TAIL_FORBIDDEN.sub("_", m.tail).rstrip(". ") for m in unit.members]
    longest = max(len(t.encode("utf-8")) for t in tails)
    stem = safe_name(unit.stem, max_bytes=max(MAX_NAME_BYTES - longest, 16), suffix=suffix)
    return [f"{stem}{tail}" for tail in tails]


def fingerprint(member: Member) -> Fingerprint:
    if member.fingerprint is None:
        member.fingerprint = hash_file(member.source)
    return member.fingerprint


def _holds_copy(target: Path, member: Member) -> bool | None:
    """True: identical file there; False: a different file; None: the name is free."""
    try:
        existing = os.stat(target)
    except FileNotFoundError:
        return None
    except OSError:
        return False  # unreadable: treat as taken, never touch it
    try:
        size = os.stat(member.source).st_size
    except OSError as exc:
        raise SourceError(f"cannot read {member.source}: {exc.strerror}") from exc
    if existing.st_size != size or not os.path.isfile(target):
        return False
    try:
        return hash_file(target) == fingerprint(member)
    except SourceError:
        return False


def place_unit(unit: Unit, folder: Path, claims: Claims) -> None:
    """Choose target names for every member of ``unit`` in ``folder`` and claim them.

    Sets ``member.target`` and ``member.identical``. Reads the disk, writes nothing.
    Raises ``SourceError`` when a member cannot be read.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        targets = [folder / name for name in _candidate_names(unit, attempt)]
        if any(claims.has(t) for t in targets):
            continue
        states = [_holds_copy(t, m) for t, m in zip(targets, unit.members, strict=True)]
        if False in states:
            continue
        for member, target, state in zip(unit.members, targets, states, strict=True):
            member.target = target
            member.identical = bool(state)
            claims.add(target)
        return
    raise RuntimeError(f"no free name for {unit.primary.source} after {MAX_ATTEMPTS} tries")
