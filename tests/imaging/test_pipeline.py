"""The feature pipeline on real files: results, skips, thumbnails, cache, cancel, no writes."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
import torch
import torchvision
from _images import dji_xmp, write_jpeg
from PIL import Image

from softclust_gui.imaging import (
    FeatureCache,
    FeaturePipeline,
    make_extractor,
    reduce_features,
    scan_source,
)


@pytest.fixture
def flight(tmp_path):
    """Twelve photos of two kinds of scene, plus broken files, in a DCIM layout."""
    folder = tmp_path / "card" / "DCIM" / "100MEDIA"
    for i in range(12):
        pixels = np.zeros((360, 480, 3), np.uint8)
        rng = np.random.default_rng(i)
        if i % 2:
            pixels[..., 1] = 110 + rng.integers(0, 70, (360, 480))  # grass
        else:
            pixels[:, ::12] = 220  # rows of a car park
            pixels += rng.integers(0, 25, pixels.shape).astype(np.uint8)
        write_jpeg(folder / f"DJI_{i:04d}.JPG", pixels=pixels, xmp=dji_xmp())
    good = (folder / "DJI_0000.JPG").read_bytes()
    (folder / "DJI_0100.JPG").write_bytes(good[: len(good) // 3])
    (folder / "DJI_0101.JPG").write_bytes(b"garbage" * 50)
    return tmp_path / "card"


def _pipeline(**kwargs):
    return FeaturePipeline(make_extractor("colour-texture"), workers=2, batch_size=4, **kwargs)


def test_features_thumbnails_and_skips(flight):
    records = scan_source(flight).images
    thumbs, progress = {}, []
    result = _pipeline(
        on_thumbnail=lambda r, jpeg: thumbs.__setitem__(r.path, jpeg),
        on_progress=progress.append,
        progress_interval=0,
    ).run(records)

    assert len(records) == 14
    assert result.features.shape == (12, result.extractor.dim)
    assert result.features.dtype == np.float32
    assert [r.path.name for r in result.images] == [f"DJI_{i:04d}.JPG" for i in range(12)]
    reasons = {s.path.name: s.reason for s in result.skipped}
    assert reasons["DJI_0100.JPG"].startswith("truncated or corrupt image data")
    assert reasons["DJI_0101.JPG"].startswith("not a readable JPEG image")
    assert (result.from_cache, result.computed, result.cancelled) == (0, 12, False)
    assert result.images[0].metadata.relative_altitude == pytest.approx(48.3)
    assert len(thumbs) == 12
    assert Image.open(io.BytesIO(thumbs[records[0].path])).size == (256, 192)
    assert progress[-1].stage == "done" and progress[-1].done == 14
    assert any(p.stage == "features" and p.rate > 0 for p in progress)

    # Same-kind scenes lie closer than different kinds.
    x = reduce_features(result.features, 8)
    dist = np.linalg.norm(x[:, None] - x[None], axis=-1)
    same = dist[0::2, 0::2].max(), dist[1::2, 1::2].max()
    assert max(same) < dist[0::2, 1::2].min()


def test_second_run_comes_from_the_cache(flight):
    records = scan_source(flight).images
    first = _pipeline().run(records)
    thumbs = []
    second = _pipeline(on_thumbnail=lambda r, jpeg: thumbs.append(jpeg)).run(records)

    assert (second.from_cache, second.computed) == (12, 0)
    np.testing.assert_array_equal(second.features, first.features)
    assert [s.reason for s in second.skipped] == [s.reason for s in first.skipped]
    assert len(thumbs) == 12
    assert second.images[3].metadata == first.images[3].metadata
    assert FeatureCache().thumbnail(records[0].path) == thumbs[0]


def test_an_edited_file_is_computed_again(flight):
    records = scan_source(flight).images
    _pipeline().run(records)
    write_jpeg(records[0].path, 200, 150, seed=42)
    again = _pipeline().run(scan_source(flight).images)
    assert (again.from_cache, again.computed) == (11, 1)


def test_cancel_keeps_finished_batches(flight):
    records = scan_source(flight).images
    cancel = threading.Event()
    seen = []

    def on_thumbnail(record, jpeg):
        seen.append(record)
        if len(seen) == 6:
            cancel.set()

    result = _pipeline(cancel=cancel, on_thumbnail=on_thumbnail).run(records)

    assert result.cancelled
    assert len(result.images) == 4  # the one batch embedded before the cancel
    assert result.features.shape[0] == 4
    assert len(result.pending) + len(result.images) + len(result.skipped) == len(records)
    resumed = _pipeline().run(records)
    assert (resumed.from_cache, resumed.computed) == (4, 8)


def test_cancel_from_another_thread_returns_within_a_second(tmp_path):
    data = write_jpeg(tmp_path / "IMG_000.jpg", 1600, 1200).read_bytes()
    for i in range(1, 300):
        (tmp_path / f"IMG_{i:03d}.jpg").write_bytes(data)
    records = scan_source(tmp_path).images
    cancel = threading.Event()
    started = threading.Event()
    pipeline = _pipeline(cancel=cancel, on_thumbnail=lambda r, j: started.set())
    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("result", pipeline.run(records)))
    worker.start()
    assert started.wait(30)
    cancel.set()
    asked = time.perf_counter()
    worker.join(10)
    assert not worker.is_alive()
    assert time.perf_counter() - asked < 1.0
    assert box["result"].cancelled and box["result"].pending


def test_nothing_is_written_next_to_the_images(flight):
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in flight.rglob("*")}
    _pipeline().run(scan_source(flight).images)
    after = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in flight.rglob("*")}
    assert after == before


def test_torchvision_model_in_the_pipeline(flight, tmp_path):
    weights = tmp_path / "mnv3.pth"
    torch.save(torchvision.models.mobilenet_v3_large(weights=None).state_dict(), weights)
    extractor = make_extractor("mobilenet_v3_large", device="cpu", weights_file=weights)
    result = FeaturePipeline(extractor, workers=2).run(scan_source(flight).images)
    assert result.features.shape == (12, 1280)
    assert not result.fallback_used
    assert result.extractor.weights_sha256 in result.extractor.key()


def test_without_a_cache(flight):
    result = FeaturePipeline(make_extractor("colour-texture"), cache=False).run(
        scan_source(flight).images
    )
    assert result.features.shape[0] == 12


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="batch_size and workers must be >= 1; got 0 and 2"):
        FeaturePipeline(make_extractor("colour-texture"), workers=2, batch_size=0)


def test_a_record_given_twice_is_processed_once(flight):
    records = scan_source(flight).images
    result = _pipeline().run(records + records[:3])
    assert [r.path for r in result.images] == [r.path for r in records[:12]]
    assert result.computed == 12


def test_only_faults_of_the_file_are_remembered(flight):
    records = scan_source(flight).images
    strict = FeaturePipeline(make_extractor("colour-texture"), max_pixels=100_000).run(records)
    reasons = {s.path.name: s.reason for s in strict.skipped}
    assert reasons["DJI_0000.JPG"] == (
        "decompression bomb refused: 480 x 360 = 0.2 MP is over the 0.1 MP limit "
        "(raise the limit if the image is genuine)"
    )
    # The limit was a setting, not a fault of the file: a later run computes it.
    again = _pipeline().run(records)
    assert (again.computed, len(again.skipped)) == (12, 2)
    known = FeatureCache().failures(records)
    assert sorted(p.name for p in known) == ["DJI_0100.JPG", "DJI_0101.JPG"]


def test_cancelled_before_the_start(flight):
    cancel = threading.Event()
    cancel.set()
    records = scan_source(flight).images
    result = _pipeline(cancel=cancel).run(records)
    assert result.cancelled and result.computed == 0
    assert result.features.shape == (0, result.extractor.dim)
    assert len(result.pending) == 14 and len(result.skipped) == 0


def test_a_cache_that_cannot_be_written_does_not_stop_the_run(flight, caplog):
    cache = FeatureCache()
    cache._connect().execute("PRAGMA query_only = 1")  # SQLite now refuses every write
    result = FeaturePipeline(make_extractor("colour-texture"), cache, workers=2).run(
        scan_source(flight).images
    )
    assert result.features.shape[0] == 12
    assert len(result.warnings) == 1
    assert "cannot be written" in result.warnings[0] and "readonly" in result.warnings[0]
    assert "cannot be written" in caplog.text


def test_a_cache_that_cannot_be_opened_does_not_stop_the_run(flight, caplog):
    from softclust_gui.imaging.cache import default_cache_path

    default_cache_path().mkdir(parents=True)  # a folder where the cache file should be
    pipeline = FeaturePipeline(make_extractor("colour-texture"), workers=2)
    result = pipeline.run(scan_source(flight).images)
    assert pipeline.cache is None and result.features.shape[0] == 12
    assert len(result.warnings) == 1 and "cannot be opened" in result.warnings[0]
    assert default_cache_path().is_dir()  # left as it was, never moved aside
    assert "cannot be opened" in caplog.text


def test_named_extractor_is_built_during_the_run(flight, tmp_path):
    weights = tmp_path / "mnv3.pth"
    torch.save(torchvision.models.mobilenet_v3_large(weights=None).state_dict(), weights)
    thumbs = []
    pipeline = FeaturePipeline(
        "mobilenet_v3_large",
        device="cpu",
        weights_file=weights,
        workers=2,
        on_thumbnail=lambda r, j: thumbs.append(r.path),
    )
    result = pipeline.run(scan_source(flight).images)

    assert result.extractor.model == "mobilenet_v3_large" and result.extractor.dim == 1280
    assert result.features.shape == (12, 1280)
    assert len(thumbs) == 12 and len(set(thumbs)) == 12  # each thumbnail once

    # Another model over the same images: thumbnails come from the cache, features anew.
    thumbs.clear()
    other = FeaturePipeline(
        "colour-texture", workers=2, on_thumbnail=lambda r, j: thumbs.append(r.path)
    )
    again = other.run(scan_source(flight).images)
    assert (again.from_cache, again.computed) == (0, 12)
    assert len(thumbs) == 12


def test_named_extractor_falls_back_with_the_same_crops(flight, no_weights):
    result = FeaturePipeline("mobilenet_v3_large", download=False, workers=2).run(
        scan_source(flight).images
    )
    assert result.fallback_used
    assert "No weights for MobileNetV3-Large" in result.notice
    assert "resize232" in result.extractor.preprocess
    assert result.features.shape[0] == 12


def test_a_named_extractor_that_cannot_be_built_raises_from_run(flight, tmp_path):
    pipeline = FeaturePipeline("mobilenet_v3_large", weights_file=tmp_path / "gone.pth")
    with pytest.raises(FileNotFoundError, match=r"gone\.pth does not exist"):
        pipeline.run(scan_source(flight).images)
    with pytest.raises(ValueError, match="extractor must be one of"):
        FeaturePipeline("vgg16")
