"""File and folder names that are valid on Windows, macOS and Linux alike.

An exported folder carries the name a person typed; a card's files carry whatever the
camera wrote. Either may hold characters one system forbids (``:`` on Windows), a name
Windows reserves (``CON``, ``COM1``), trailing dots or spaces that Explorer drops, or more
bytes than a file system allows. ``safe_name`` turns any of these into a name every
system accepts and that still reads like the original.
"""

from __future__ import annotations

import re
import unicodedata

# NTFS counts 255 UTF-16 units, ext4 and APFS 255 UTF-8 bytes; bytes are the stricter.
MAX_NAME_BYTES = 255

_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    "CONIN$",
    "CONOUT$",
    *(f"COM{d}" for d in "0123456789¹²³"),
    *(f"LPT{d}" for d in "0123456789¹²³"),
}


def split_ext(name: str) -> tuple[str, str]:
    """``("DJI_0001", ".JPG")`` from ``"DJI_0001.JPG"``; a leading dot is not an extension."""
    dot = name.rfind(".")
    if dot <= 0 or dot == len(name) - 1:
        return name, ""
    return name[:dot], name[dot:]


def _truncate_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` that fits ``max_bytes`` in UTF-8, whole characters."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


def _is_reserved(name: str) -> bool:
    # Windows reserves the bare device name and the device name with any extension.
    base = name.split(".", 1)[0].rstrip(" ")
    return base.upper() in _RESERVED


def safe_name(name: str, *, max_bytes: int = MAX_NAME_BYTES, suffix: str = "") -> str:
    """A version of ``name`` usable as one file or folder name on every system.

    Parameters
    ----------
    name : str
        The wanted name: a cluster's name or a source file's name. No path separators
        are kept; they become ``_``.
    max_bytes : int
        Longest allowed result in UTF-8 bytes, suffix and extension included.
    suffix : str
        Text inserted before the extension, e.g. ``"_2"`` for a collision; the stem is
        shortened, never the suffix or the extension.

    Returns
    -------
    str
        NFC-normalised, forbidden and control characters replaced by ``_``, no trailing
        dots or spaces, no reserved device name, at most ``max_bytes`` bytes.
    """
    text = unicodedata.normalize("NFC", name)
    text = _FORBIDDEN.sub("_", text).strip(" ")
    text = text.rstrip(". ")
    if not text or set(text) == {"."}:
        text = "_"
    if _is_reserved(text):
        stem, ext = split_ext(text)
        text = f"{stem}_{ext}"
    stem, ext = split_ext(text)
    if len(ext.encode("utf-8")) > max_bytes // 2:
        stem, ext = text, ""  # an absurd "extension" is just part of the name
    room = max_bytes - len(ext.encode("utf-8")) - len(suffix.encode("utf-8"))
    short = _truncate_utf8(stem, max(room, 1))
    if short != stem:
        short = short.rstrip(". ") or "_"  # a cut may leave a trailing dot or space
    return f"{short}{suffix}{ext}"


def collision_suffix(attempt: int) -> str:
    """The suffix of the ``attempt``-th candidate name: ``""``, then ``"_2"``, ``"_3"``..."""
    return "" if attempt <= 1 else f"_{attempt}"


def name_key(name: str) -> str:
    """Key under which two names clash on a case-insensitive file system (NTFS, APFS)."""
    return unicodedata.normalize("NFC", name).casefold()
