"""``softclust scan`` and ``softclust features`` on files the test writes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch
import torchvision

from softclust_gui.cli.main import main


def test_scan_prints_images_and_skipped(card, capsys):
    assert main(["scan", str(card), "--metadata"]) == 0
    out = capsys.readouterr().out
    assert "(camera card; walked" in out
    assert "Images: 4 (4 JPEG); 1 with companion files" in out
    assert "DJI_0001.JPG" in out and "+ DJI_0001.DNG" in out
    assert "48.3 m above take-off" in out
    assert "GPS -33.860000,151.215000" in out
    assert "1 x video file" in out
    assert "Skipped: 4" in out


def test_scan_of_a_missing_folder(tmp_path, capsys):
    assert main(["scan", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().out


def test_features_falls_back_without_weights_and_saves(card, tmp_path, capsys, no_weights):
    output = tmp_path / "features.npz"
    code = main(
        ["features", str(card), "--no-download", "--workers", "2", "--output", str(output)]
    )
    captured = capsys.readouterr()

    assert code == 0
    assert "No weights for MobileNetV3-Large were found" in captured.out
    assert "colour-texture (fallback: no network weights found)" in captured.out
    assert "Features: 4 images (0 from the cache, 4 computed)" in captured.out
    assert "images/s" in captured.out
    assert "features [" in captured.err  # the progress bar
    saved = np.load(output)
    assert saved["features"].shape[0] == 4 and len(saved["paths"]) == 4

    assert main(["features", str(card), "--no-download"]) == 0
    assert "(4 from the cache, 0 computed)" in capsys.readouterr().out


def test_features_with_a_weights_file(card, tmp_path, capsys):
    weights = tmp_path / "w.pth"
    torch.save(torchvision.models.mobilenet_v3_large(weights=None).state_dict(), weights)
    assert main(["features", str(card), "--weights", str(weights), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "Extractor: mobilenet_v3_large (w.pth, user file) on cpu" in out
    assert "1280 dims" in out


def test_features_with_a_bad_weights_file(card, tmp_path, capsys):
    assert main(["features", str(card), "--weights", str(tmp_path / "missing.pth")]) == 1
    assert "Cannot use the mobilenet_v3_large extractor" in capsys.readouterr().out


def test_runs_as_a_separate_process(card, tmp_path):
    code = "import sys; from softclust_gui.cli.main import main; sys.exit(main(sys.argv[1:]))"
    env = {"SOFTCLUST_HOME": str(tmp_path / "home"), "PATH": ""}
    proc = subprocess.run(
        [sys.executable, "-c", code, "scan", str(card)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Images: 4" in proc.stdout
