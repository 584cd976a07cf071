"""Per-image metadata: capture time, GPS, DJI flight fields, camera, size, orientation.

Everything is read from the file's header (EXIF, the GPS IFD and the XMP packet) without
decoding pixels. A value that is missing or unreadable is ``None``; a broken EXIF block never
stops the image from being used.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from fractions import Fraction
from typing import Any

logger = logging.getLogger(__name__)

_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_TAG_MAKE, _TAG_MODEL, _TAG_ORIENTATION, _TAG_DATETIME = 271, 272, 274, 306
_TAG_DATETIME_ORIGINAL = 36867
_TAG_XMP_TIFF = 700

_DJI_FIELDS = {
    "relative_altitude": "RelativeAltitude",
    "gimbal_pitch": "GimbalPitchDegree",
    "flight_yaw": "FlightYawDegree",
}


@dataclass(frozen=True)
class ImageMetadata:
    """What the app knows about one image besides its pixels.

    ``width`` and ``height`` are the stored pixel size, before EXIF ``orientation``
    (1-8, 1 = upright) is applied. Altitudes are metres, angles degrees, GPS WGS84 degrees
    (south and west negative). ``captured_at`` is ISO 8601 local camera time, as written.
    """

    width: int | None = None
    height: int | None = None
    orientation: int = 1
    captured_at: str | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    altitude: float | None = None
    relative_altitude: float | None = None
    gimbal_pitch: float | None = None
    flight_yaw: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageMetadata:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def read_metadata(image) -> ImageMetadata:
    """Metadata of an opened PIL image (header only; the pixels need not be loaded)."""
    try:
        exif = image.getexif()
    except Exception as exc:  # a damaged EXIF block must not lose the image
        logger.debug("unreadable EXIF in %s: %s", getattr(image, "filename", "?"), exc)
        exif = {}
    values: dict[str, Any] = {"width": image.size[0], "height": image.size[1]}
    if exif:
        values.update(_camera_fields(exif))
        values.update(_gps_fields(exif))
    values.update(_dji_fields(_xmp_text(image, exif)))
    return ImageMetadata(**values)


def _camera_fields(exif) -> dict[str, Any]:
    out: dict[str, Any] = {}
    orientation = exif.get(_TAG_ORIENTATION)
    if isinstance(orientation, int) and 1 <= orientation <= 8:
        out["orientation"] = orientation
    out["camera_make"] = _clean_text(exif.get(_TAG_MAKE))
    out["camera_model"] = _clean_text(exif.get(_TAG_MODEL))
    try:
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception:
        sub = {}
    stamp = sub.get(_TAG_DATETIME_ORIGINAL) or exif.get(_TAG_DATETIME)
    out["captured_at"] = _parse_exif_time(stamp)
    return out


def _gps_fields(exif) -> dict[str, Any]:
    try:
        gps = exif.get_ifd(_GPS_IFD)
    except Exception:
        return {}
    if not gps:
        return {}
    out: dict[str, Any] = {}
    lat = _dms_to_degrees(gps.get(2), gps.get(1), negative="S")
    lon = _dms_to_degrees(gps.get(4), gps.get(3), negative="W")
    if lat is not None and lon is not None and abs(lat) <= 90 and abs(lon) <= 180:
        out["latitude"], out["longitude"] = lat, lon
    alt = _to_float(gps.get(6))
    if alt is not None:
        below_sea = gps.get(5) in (1, b"\x01")
        out["altitude"] = -alt if below_sea else alt
    return out


def _xmp_text(image, exif) -> str:
    raw = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
    if raw is None and exif:
        raw = exif.get(_TAG_XMP_TIFF)
    if raw is None:
        return ""
    if isinstance(raw, bytes | bytearray):
        return raw.decode("utf-8", "replace")
    return str(raw)


def _dji_fields(xmp: str) -> dict[str, Any]:
    if "drone-dji" not in xmp:
        return {}
    out: dict[str, Any] = {}
    for key, name in _DJI_FIELDS.items():
        # Attribute form drone-dji:X="+1.2" or element form <drone-dji:X>+1.2</drone-dji:X>.
        match = re.search(rf'drone-dji:{name}\s*=\s*"([^"]*)"', xmp) or re.search(
            rf"<drone-dji:{name}>([^<]*)<", xmp
        )
        if match:
            out[key] = _to_float(match.group(1).strip())
    return out


def _clean_text(value) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def _parse_exif_time(value) -> str | None:
    text = _clean_text(value)
    if not text:
        return None
    for pattern in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(text[:19], pattern).isoformat()
        except ValueError:
            continue
    return None


def _to_float(value) -> float | None:
    if value is None:
        return None
    try:
        if isinstance(value, tuple) and len(value) == 2:  # a raw rational
            return float(Fraction(int(value[0]), int(value[1])))
        result = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return result if result == result else None  # NaN from 0/0 rationals


def _dms_to_degrees(dms, ref, negative: str) -> float | None:
    if not isinstance(dms, tuple) or len(dms) != 3:
        return None
    parts = [_to_float(v) for v in dms]
    if any(p is None for p in parts):
        return None
    degrees = parts[0] + parts[1] / 60.0 + parts[2] / 3600.0
    ref_text = _clean_text(ref) or ""
    return -degrees if ref_text.upper().startswith(negative) else degrees
