"""The built bundle runs: its CLI sorts photos, its GUI starts offscreen and quits on SIGTERM.

Skipped when no bundle is built: ``python packaging/build.py`` makes one in
``packaging/dist`` and marks it finished with ``SoftClust.build.json`` beside it (a folder
without it may be half written by a running build); ``SOFTCLUST_BUNDLE`` names another.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import report_size
import smoke_test
import softclust_bundle as sb


def _bundle() -> Path:
    named = os.environ.get("SOFTCLUST_BUNDLE")
    bundle = Path(named) if named else report_size.default_bundle()
    if not named and not sb.build_stamp(bundle).is_file():
        pytest.skip(f"no finished build: no {sb.build_stamp(bundle)} (see packaging/README.md)")
    try:
        smoke_test.executables(bundle)
    except FileNotFoundError as exc:
        pytest.skip(f"no built bundle: {exc}")
    return bundle


@pytest.fixture(scope="module")
def bundle() -> Path:
    return _bundle()


@pytest.fixture(scope="module")
def sample(bundle, tmp_path_factory) -> Path:
    source, _label = smoke_test.sample_source(bundle, tmp_path_factory.mktemp("sample"))
    return source


def _assert_ok(check: smoke_test.Check) -> None:
    assert check.ok, f"{check.name}: {check.detail}"


@pytest.mark.slow
def test_frozen_cli_prints_its_version(bundle, tmp_path):
    _assert_ok(smoke_test.check_version(smoke_test.executables(bundle)[1], tmp_path / "home"))


@pytest.mark.slow
def test_frozen_sort_writes_every_image_into_cluster_folders(bundle, sample, tmp_path):
    cli = smoke_test.executables(bundle)[1]
    check = smoke_test.check_sort(cli, sample, tmp_path / "out", tmp_path / "home", "default")
    _assert_ok(check)
    assert smoke_test.export_problems(sample, tmp_path / "out") == []


@pytest.mark.slow
def test_frozen_sort_runs_the_cnn_with_a_weights_file(bundle, sample, tmp_path):
    weights = smoke_test.write_random_weights(tmp_path / "mobilenet_v3_large-random.pth")
    extra = ["--model", "mobilenet_v3_large", "--weights", weights]
    cli = smoke_test.executables(bundle)[1]
    check = smoke_test.check_sort(
        cli, sample, tmp_path / "out", tmp_path / "home", "CNN", extra
    )
    _assert_ok(check)
    log = (tmp_path / "home" / "log" / "softclust.log").read_text(encoding="utf-8")
    assert "loaded MobileNetV3-Large weights" in log  # the frozen torch ran the network


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX only")
def test_frozen_gui_starts_offscreen_and_quits_on_sigterm(bundle, tmp_path):
    gui = smoke_test.executables(bundle)[0]
    _assert_ok(smoke_test.check_gui(gui, tmp_path / "home", "test"))


def test_export_problems_sees_a_missing_changed_or_unsorted_copy(tmp_path):
    """The bundle checks above rely on this verdict, so it is tested without a bundle."""
    source = smoke_test.write_sample_photos(tmp_path / "src", count=4)
    images = sorted(p for p in source.rglob("*.JPG"))
    out = tmp_path / "out"
    for i, image in enumerate(images):
        target = out / f"cluster-{i % 2}" / image.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(image.read_bytes())
    (out / smoke_test.MANIFEST_NAME).write_text("path\n")
    assert smoke_test.export_problems(source, out) == []

    changed = out / "cluster-0" / images[0].name
    changed.write_bytes(changed.read_bytes()[:-10])
    assert smoke_test.export_problems(source, out) == [
        "1 source images missing or changed, 1 unexpected files"
    ]
    changed.write_bytes(images[0].read_bytes())
    for image in (out / "cluster-1").iterdir():
        image.rename(out / "cluster-0" / image.name)
    (out / smoke_test.MANIFEST_NAME).unlink()
    assert smoke_test.export_problems(source, out) == [
        "all 4 images in one folder: nothing was sorted",
        f"no {smoke_test.MANIFEST_NAME} in {out}",
    ]
