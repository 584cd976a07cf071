"""Decoding real files: DCT-reduced JPEG, orientation, thumbnails, broken inputs."""

from __future__ import annotations

import io

import numpy as np
import pytest
from _images import photo_pixels, write_jpeg, write_png_bomb
from PIL import Image

from softclust_gui.imaging.decode import DecodeError, Preprocess, decode_image

PRE = Preprocess(resize=232, crop=224)


def _thumb(decoded) -> Image.Image:
    return Image.open(io.BytesIO(decoded.thumbnail))


def test_large_jpeg_decodes_at_the_largest_reduction_that_covers_the_model(tmp_path):
    path = write_jpeg(tmp_path / "big.jpg", 2000, 1500)

    decoded = decode_image(path, "jpeg", PRE)

    # 1/8 would give 250 x 188, short of the 232 px resize; 1/4 gives 500 x 375.
    assert decoded.reduction == 4
    assert decoded.pixels.shape == (224, 224, 3) and decoded.pixels.dtype == np.uint8
    assert decoded.thumbnail_size == (256, 192)
    assert _thumb(decoded).size == (256, 192)
    assert decoded.metadata.width == 2000


def test_reduced_decode_matches_a_full_decode(tmp_path):
    path = write_jpeg(tmp_path / "big.jpg", 2000, 1500, seed=3)
    full = Image.open(path).convert("RGB")
    scale = 232 / 1500
    resized = full.resize((round(2000 * scale), 232), Image.Resampling.BILINEAR)
    left = (resized.width - 224) // 2
    reference = np.asarray(resized.crop((left, 4, left + 224, 228)), np.float32)

    decoded = decode_image(path, "jpeg", PRE).pixels.astype(np.float32)

    assert np.abs(decoded - reference).mean() < 6.0


def test_exif_orientation_is_applied(tmp_path):
    # Stored landscape: left half red, right half blue. Orientation 6 means "rotate 90
    # degrees clockwise to display", so upright the red half is on top.
    pixels = np.zeros((300, 400, 3), np.uint8)
    pixels[:, :200, 0] = 255
    pixels[:, 200:, 2] = 255
    path = write_jpeg(tmp_path / "rot.jpg", pixels=pixels, orientation=6)

    decoded = decode_image(path, "jpeg", Preprocess(resize=224, crop=224))

    top, bottom = decoded.pixels[10, 112], decoded.pixels[-10, 112]
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60
    assert decoded.thumbnail_size == (192, 256)
    assert decoded.metadata.orientation == 6


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP"])
def test_other_formats(tmp_path, fmt):
    path = tmp_path / f"img.{fmt.lower()}"
    Image.fromarray(photo_pixels(300, 260)).save(path, fmt)
    decoded = decode_image(path, fmt.lower(), PRE)
    assert decoded.pixels.shape == (224, 224, 3)
    assert decoded.reduction == 1


def test_modes_are_converted_to_rgb(tmp_path):
    grey16 = (np.arange(256 * 256, dtype=np.uint16).reshape(256, 256) * 1).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    decoded = decode_image(tmp_path / "g16.png", "png", PRE)
    assert decoded.pixels.max() > 200  # scaled to 8 bits, not clipped to white
    assert len(np.unique(decoded.pixels)) > 50

    Image.new("RGBA", (240, 240), (10, 200, 30, 128)).save(tmp_path / "alpha.png")
    assert decode_image(tmp_path / "alpha.png", "png", PRE).pixels.shape == (224, 224, 3)

    Image.new("CMYK", (240, 240), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    red = decode_image(tmp_path / "cmyk.jpg", "jpeg", PRE).pixels[100, 100]
    assert red[0] > 200 and red[1] < 60


def test_zero_byte_file(tmp_path):
    (tmp_path / "z.jpg").write_bytes(b"")
    with pytest.raises(DecodeError, match=r"empty file \(0 bytes\)"):
        decode_image(tmp_path / "z.jpg", "jpeg", PRE)


def test_truncated_jpeg(tmp_path):
    data = write_jpeg(tmp_path / "ok.jpg", 640, 480).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError, match="truncated or corrupt image data"):
        decode_image(tmp_path / "cut.jpg", "jpeg", PRE)


def test_garbage_under_an_image_name(tmp_path):
    (tmp_path / "fake.jpg").write_bytes(b"this is not a picture" * 10)
    with pytest.raises(DecodeError, match=r"not a readable JPEG image \(210 bytes"):
        decode_image(tmp_path / "fake.jpg", "jpeg", PRE)


def test_decompression_bombs_are_refused(tmp_path):
    with pytest.raises(DecodeError, match="decompression bomb refused"):
        decode_image(write_png_bomb(tmp_path / "huge.png"), "png", PRE)
    # Under PIL's own limit, over ours: our message quotes the size.
    small_limit = write_png_bomb(tmp_path / "big.png", 3000, 2000)
    with pytest.raises(DecodeError, match=r"3000 x 2000 = 6.0 MP is over the 5.0 MP limit"):
        decode_image(small_limit, "png", PRE, max_pixels=5_000_000)


def test_vanished_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        decode_image(tmp_path / "gone.jpg", "jpeg", PRE)


def test_dng_preview_through_tiff(tmp_path):
    # Without rawpy a DNG is read as the TIFF it is; its first image is the preview.
    path = tmp_path / "DJI_0001.DNG"
    Image.fromarray(photo_pixels(320, 240)).save(path, "TIFF")
    assert decode_image(path, "dng", PRE).pixels.shape == (224, 224, 3)


def test_heic_without_support_says_what_to_install(tmp_path):
    import importlib.util

    if importlib.util.find_spec("pillow_heif") is not None:
        pytest.skip("pillow-heif is installed here")
    (tmp_path / "a.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    with pytest.raises(DecodeError, match=r"pip install 'softclust-gui\[heic\]'"):
        decode_image(tmp_path / "a.heic", "heic", PRE)


def test_multi_picture_jpeg_is_still_reduced_in_the_dct(tmp_path):
    # Many cameras append a preview as a second picture (MPF); PIL opens those as MPO.
    main = Image.fromarray(photo_pixels(2000, 1500))
    preview = Image.fromarray(photo_pixels(320, 240, seed=1))
    path = tmp_path / "mpo.jpg"
    main.save(path, "MPO", save_all=True, append_images=[preview])
    assert Image.open(path).format == "MPO"

    decoded = decode_image(path, "jpeg", PRE)

    assert decoded.reduction == 4
    assert decoded.metadata.width == 2000
