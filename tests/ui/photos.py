"""Real JPEG files for the GUI tests: groups of distinct colours, some with GPS EXIF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# Three looks a field operator would recognise: grass, roof tiles, water.
LOOKS = [(70, 150, 60), (170, 70, 50), (40, 90, 170)]


def _gps_exif(lat: float, lon: float) -> Image.Exif:
    exif = Image.Exif()
    gps = exif.get_ifd(0x8825)

    def dms(value: float):
        value = abs(value)
        degrees = int(value)
        minutes = int((value - degrees) * 60)
        seconds = round(((value - degrees) * 60 - minutes) * 60, 4)
        return (degrees, minutes, seconds)

    gps[1], gps[2] = ("N" if lat >= 0 else "S"), dms(lat)
    gps[3], gps[4] = ("E" if lon >= 0 else "W"), dms(lon)
    exif[0x0132] = "2026:05:01 10:00:00"
    return exif


def write_photos(
    folder: Path, per_look: int = 8, size: tuple[int, int] = (64, 48), gps: bool = False
) -> list[Path]:
    """``per_look`` noisy JPEGs of each look under ``folder``; returns their paths."""
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    width, height = size
    for look, colour in enumerate(LOOKS):
        for i in range(per_look):
            pixels = np.array(colour) + rng.normal(0, 18, (height, width, 3))
            pixels[:, : width // 4] += 40 * (look - 1)  # a band that differs by look
            path = folder / f"look{look}_{i:04d}.jpg"
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
            if gps:
                exif = _gps_exif(46.0 + 0.001 * look + 0.0001 * i, 7.0 + 0.0002 * i)
                image.save(path, quality=85, exif=exif)
            else:
                image.save(path, quality=85)
            written.append(path)
    return written
