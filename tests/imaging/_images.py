"""Writers of real image files for the imaging tests: JPEG with EXIF, GPS and DJI XMP."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

XMP_MARKER = b"http://ns.adobe.com/xap/1.0/\x00"


def photo_pixels(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A photo-like RGB image: smooth colour fields, edges and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(40, 200, 3)
    phase = rng.uniform(0, 6.3, 3)
    freq = rng.uniform(2, 9)
    img = np.stack(
        [
            base[c] + 50 * np.sin(freq * x / width * 6.28 + phase[c]) * np.cos(y / height * 3)
            for c in range(3)
        ],
        axis=-1,
    )
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def dji_xmp(relative_altitude="+48.30", pitch="-90.00", yaw="+12.50") -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/" '
        f'drone-dji:RelativeAltitude="{relative_altitude}" '
        f'drone-dji:GimbalPitchDegree="{pitch}" drone-dji:FlightYawDegree="{yaw}"/>'
        '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def insert_app1_xmp(jpeg: bytes, xmp: bytes) -> bytes:
    """Insert an XMP APP1 segment right after the JPEG's SOI marker."""
    assert jpeg[:2] == b"\xff\xd8"
    payload = XMP_MARKER + xmp
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + segment + jpeg[2:]


def make_exif(orientation: int = 1, gps: bool = True) -> Image.Exif:
    exif = Image.Exif()
    exif[271] = "DJI"
    exif[272] = "FC6310"
    exif[274] = orientation
    exif.get_ifd(0x8769)[36867] = "2024:05:01 10:20:30"
    if gps:
        info = exif.get_ifd(0x8825)
        info[1], info[2] = "S", (33.0, 51.0, 36.0)
        info[3], info[4] = "E", (151.0, 12.0, 54.0)
        info[5], info[6] = 0, 120.5
    return exif


def write_jpeg(
    path: Path,
    width=640,
    height=480,
    *,
    seed=0,
    orientation=1,
    gps=True,
    xmp: bytes | None = None,
    pixels: np.ndarray | None = None,
) -> Path:
    import io

    image = Image.fromarray(pixels if pixels is not None else photo_pixels(width, height, seed))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, exif=make_exif(orientation, gps))
    data = buffer.getvalue()
    if xmp is not None:
        data = insert_app1_xmp(data, xmp)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_png_bomb(path: Path, width=40_000, height=40_000) -> Path:
    """A small PNG whose header claims a huge size (the IHDR is patched, CRC fixed)."""
    import io

    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    ihdr = 8  # after the signature: length(4) type(4) data(13) crc(4)
    data[ihdr + 8 : ihdr + 16] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr + 4 : ihdr + 21])) & 0xFFFFFFFF
    data[ihdr + 21 : ihdr + 25] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))
    return path
