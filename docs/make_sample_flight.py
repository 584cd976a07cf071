"""Rebuild ``resources/sample-flight/`` from scikit-image's bundled CC0 / public-domain photos.

Run once with scikit-image installed (``pip install scikit-image``); the app itself never
imports scikit-image. Each output is a crop of one photo, tinted where the source is grey,
saved as JPEG with demonstration EXIF (time, camera, GPS along a short survey line), so
that the preview and the map have something to show. See SOURCES.md in that folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

OUT = Path(__file__).resolve().parent.parent / "resources" / "sample-flight"
# (source function, tint for grey sources or None, crops as (x, y, size), licence)
PLAN = [
    ("grass", (0.55, 0.85, 0.40), [(0, 0, 384), (128, 0, 384), (0, 128, 384), (128, 128, 384)]),
    (
        "gravel",
        (0.85, 0.80, 0.72),
        [(0, 0, 384), (128, 0, 384), (0, 128, 384), (128, 128, 384)],
    ),
    ("brick", (0.90, 0.55, 0.42), [(0, 0, 384), (128, 0, 384), (0, 128, 384), (128, 128, 384)]),
    ("rocket", None, [(0, 0, 427), (213, 0, 427)]),
    ("coffee", None, [(0, 0, 400), (200, 0, 400)]),
    ("hubble_deep_field", None, [(0, 0, 600), (400, 272, 600)]),
]
START = (46.52000, 6.56500)  # demonstration positions only


def _pixels(name: str, tint) -> np.ndarray:
    image = getattr(data, name)()
    if image.ndim == 2:
        grey = image.astype(np.float64)[..., None]
        image = np.clip(grey * np.array(tint), 0, 255).astype(np.uint8)
    return image[..., :3]


def _exif(index: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "SoftClust sample"
    exif[0x0110] = "sample flight"
    exif[0x0132] = f"2026:05:01 10:{index:02d}:00"
    gps = exif.get_ifd(0x8825)
    lat = START[0] + 0.0004 * (index % 6)
    lon = START[1] + 0.0006 * (index // 6)

    def dms(value: float):
        degrees = int(value)
        minutes = int((value - degrees) * 60)
        return (degrees, minutes, round(((value - degrees) * 60 - minutes) * 60, 3))

    gps[1], gps[2], gps[3], gps[4] = "N", dms(lat), "E", dms(lon)
    gps[5], gps[6] = 0, 420.0 + index
    return exif


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    index = 0
    for name, tint, crops in PLAN:
        pixels = _pixels(name, tint)
        for x, y, size in crops:
            index += 1
            crop = Image.fromarray(pixels[y : y + size, x : x + size])
            target = OUT / f"SAMPLE_{index:04d}.JPG"
            crop.save(target, quality=88, exif=_exif(index))
            print(target.name, name, crop.size)


if __name__ == "__main__":
    main()
