"""Extractors: the real weights lookup and loading, penultimate embeddings, the fallback."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from softclust_gui import paths
from softclust_gui.imaging import extractors
from softclust_gui.imaging.extractors import (
    ColourTextureExtractor,
    TorchvisionExtractor,
    find_weights,
    make_extractor,
    weights_file_name,
)

MOBILENET = "mobilenet_v3_large"


@pytest.fixture(scope="module")
def mobilenet_file(tmp_path_factory) -> Path:
    """A real MobileNetV3-Large state_dict (random init) saved by the test."""
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_large(weights=None)
    path = tmp_path_factory.mktemp("weights") / "my-mobilenet.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Bundled resources and torch's hub cache in empty tmp folders."""
    resources = tmp_path / "resources"
    monkeypatch.setattr(paths, "resources_dir", lambda: resources)
    hub = tmp_path / "hub"
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(hub))
    yield {
        "bundled": resources / "weights" / weights_file_name(MOBILENET),
        "hub cache": hub / "checkpoints" / weights_file_name(MOBILENET),
    }
    torch.hub.set_dir(old)


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes())
    return dst


def test_lookup_order_user_bundled_hub(places, mobilenet_file):
    assert find_weights(MOBILENET, download=False) is None
    _copy(mobilenet_file, places["hub cache"])
    assert find_weights(MOBILENET, download=False).origin == "hub cache"
    _copy(mobilenet_file, places["bundled"])
    found = find_weights(MOBILENET, download=False)
    assert (found.origin, found.path) == ("bundled", places["bundled"])
    user = find_weights(MOBILENET, mobilenet_file, download=False)
    assert (user.origin, user.path) == ("user file", mobilenet_file)


def test_missing_user_file_is_an_error_not_a_silent_fallback(places, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"weights file .*typo\.pth does not exist"):
        make_extractor(MOBILENET, weights_file=tmp_path / "typo.pth", download=False)


def test_no_weights_falls_back_visibly(places, caplog):
    with caplog.at_level(logging.WARNING):
        extractor = make_extractor(MOBILENET, download=False)
    assert isinstance(extractor, ColourTextureExtractor)
    assert extractor.identity.fallback is True
    assert "No weights for MobileNetV3-Large were found" in extractor.notice
    assert str(places["bundled"]) in extractor.notice
    assert "No weights for MobileNetV3-Large" in caplog.text


def test_loaded_model_gives_penultimate_embeddings(places, mobilenet_file):
    extractor = make_extractor(MOBILENET, device="cpu", weights_file=mobilenet_file)

    assert isinstance(extractor, TorchvisionExtractor)
    ident = extractor.identity
    assert (ident.model, ident.dim, ident.origin, ident.fallback) == (
        MOBILENET,
        1280,
        "user file",
        False,
    )
    assert ident.weights_sha256 == hashlib.sha256(mobilenet_file.read_bytes()).hexdigest()[:16]
    assert (extractor.preprocess.resize, extractor.preprocess.crop) == (232, 224)

    pixels = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    out = extractor.embed(pixels)

    # The same weights through plain torchvision, classifier's last layer removed.
    reference = torchvision.models.mobilenet_v3_large(weights=None)
    reference.load_state_dict(torch.load(mobilenet_file, weights_only=True))
    reference.classifier[-1] = torch.nn.Identity()
    reference.eval()
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    with torch.no_grad():
        expected = reference((x - mean) / std).numpy()
    assert out.shape == (3, 1280) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-3, atol=1e-4)


def test_weights_of_another_architecture_are_refused(places, tmp_path):
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(ValueError, match=r"does not fit mobilenet_v3_large: \d+ missing keys"):
        make_extractor(MOBILENET, weights_file=wrong)
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="could not be read as a torch state_dict"):
        make_extractor(MOBILENET, weights_file=tmp_path / "junk.pth")


def test_resnet50_loads_from_the_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "resources_dir", lambda: tmp_path / "resources")
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        target = tmp_path / "hub" / "checkpoints" / weights_file_name("resnet50")
        target.parent.mkdir(parents=True)
        torch.save(torchvision.models.resnet50(weights=None).state_dict(), target)
        extractor = make_extractor("resnet50", device="cpu", download=False)
    finally:
        torch.hub.set_dir(old)
    assert extractor.identity.origin == "hub cache"
    out = extractor.embed(np.zeros((2, 224, 224, 3), np.uint8))
    assert out.shape == (2, 2048)


def test_download_writes_through_a_temporary_file_and_checks_the_hash(tmp_path):
    payload = b"weights" * 1000
    source = tmp_path / "served.pth"
    source.write_bytes(payload)
    prefix = hashlib.sha256(payload).hexdigest()[:8]
    seen = []

    target = tmp_path / "hub" / f"model-{prefix}.pth"
    extractors._download(source.as_uri(), target, lambda done, total: seen.append(done))

    assert target.read_bytes() == payload
    assert seen[-1] == len(payload)
    bad = tmp_path / "hub" / "model-00000000.pth"
    with pytest.raises(OSError, match="does not match its hash prefix 00000000"):
        extractors._download(source.as_uri(), bad, None)
    assert not bad.exists()
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_unknown_extractor_name():
    with pytest.raises(ValueError, match=r"extractor must be one of .*; got 'vgg'"):
        make_extractor("vgg")


def test_colour_texture_descriptor_tells_scenes_apart():
    extractor = make_extractor("colour-texture")
    rng = np.random.default_rng(0)
    grass = np.zeros((4, 224, 224, 3), np.uint8)
    grass[..., 1] = 120 + rng.integers(0, 60, (4, 224, 224))
    stripes = np.zeros((4, 224, 224, 3), np.uint8)
    stripes[:, :, ::8] = 200
    stripes = stripes + rng.integers(0, 30, stripes.shape).astype(np.uint8)

    out = extractor.embed(np.concatenate([grass, stripes]))

    assert out.shape == (8, extractor.identity.dim) and out.dtype == np.float32
    assert extractor.identity.fallback is False
    dist = np.linalg.norm(out[:, None] - out[None], axis=-1)
    within = max(dist[:4, :4].max(), dist[4:, 4:].max())
    assert within < dist[:4, 4:].min()
    np.testing.assert_array_equal(out, extractor.embed(np.concatenate([grass, stripes])))


def test_litert_extractor_on_the_shared_weights():
    pytest.importorskip("ai_edge_litert")
    model = (
        Path(__file__).resolve().parents[3]
        / "shared"
        / "data"
        / "weights"
        / extractors.LITERT_WEIGHTS
    )
    if not model.is_file():
        pytest.skip(f"{model} is not on this machine")
    extractor = make_extractor("litert-mobilenet_v1", weights_file=model)
    out = extractor.embed(np.full((2, 224, 224, 3), 128, np.uint8))
    assert out.shape == (2, 1024) and np.all(out >= 0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_half_precision_on_the_gpu_matches_the_cpu(places, mobilenet_file):
    pixels = np.random.default_rng(1).integers(0, 256, (4, 224, 224, 3), dtype=np.uint8)
    cpu = make_extractor(MOBILENET, device="cpu", weights_file=mobilenet_file).embed(pixels)
    gpu = make_extractor(MOBILENET, device="cuda", weights_file=mobilenet_file)
    out = gpu.embed(pixels)
    assert out.dtype == np.float32 and gpu.batch_size == 64
    cosine = (out * cpu).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(cpu, axis=1)
    assert cosine.min() > 0.99
