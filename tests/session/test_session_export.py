"""From a session edited by hand to folders on disk: names, exclusions, companions."""

from __future__ import annotations

import csv

import numpy as np

from softclust_gui.session import MANIFEST_NAME, ROOT, ImageEntry, Session, export
from tests.session.conftest import sha256


def test_user_names_exclusions_and_companions_reach_the_export(tmp_path, make_images):
    paths = make_images(
        tmp_path / "card", [f"DCIM/{i // 4}/DJI_{i % 4:04d}.JPG" for i in range(8)]
    )
    raw = paths[0].with_suffix(".DNG")
    raw.write_bytes(b"raw" * 10)
    entries = [
        ImageEntry(
            p, {"captured_at": "2024-06-01T09:30:00", "latitude": 46.5, "longitude": 8.25}
        )
        for p in paths
    ]
    entries[0] = ImageEntry(paths[0], entries[0].metadata, companions=(raw,))
    features = np.repeat(np.eye(2), 4, axis=0) * 5 + np.random.default_rng(0).normal(
        0, 0.1, (8, 2)
    )
    session = Session(tmp_path / "card", entries, features)
    session.recluster(ROOT, n_clusters=2)
    first = session.node_of(0)  # the cluster of the image with a companion
    (second,) = [c for c in session.node(ROOT).children if c != first]
    session.rename(first, "Roofs: north?")
    session.exclude([session.images_of(second)[-1]])
    extra = session.new_cluster(second, "Solar/panels")
    session.move_images(session.images_of(second)[:1], extra)

    report = export(session.export_items(), tmp_path / "out")

    assert report.complete and len(report.exported) == 8  # 7 images and one companion
    out = tmp_path / "out"
    assert len(list((out / "Roofs_ north_").iterdir())) == 5  # 4 images + the DNG
    assert len(list((out / session.name(second) / "Solar_panels").iterdir())) == 1
    excluded = session.images[session.images_of(second)[-1]].path
    assert excluded not in {r.source for r in report.results}
    with open(out / MANIFEST_NAME, encoding="utf-8", newline="") as handle:
        rows = {r["source"]: r for r in csv.DictReader(handle)}
    row = rows[str(paths[0])]
    assert row["gps"] == "46.5,8.25" and row["capture_time"] == "2024-06-01T09:30:00"
    assert {r["cluster"] for r in rows.values()} >= {"Roofs: north?", "Solar/panels"}
    for result in report.exported:
        assert sha256(result.target) == sha256(result.source)
