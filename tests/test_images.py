"""Large images are downscaled in their own format with a true MIME type; small ones pass untouched."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from docrouter.errors import Corrupt
from docrouter.inspect.images import ImageLimits, prepare_image

SNIFF = {"image/png": b"\x89PNG", "image/jpeg": b"\xff\xd8\xff", "image/gif": b"GIF8", "image/webp": b"RIFF"}


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kw)
    return out.getvalue()


def test_small_image_is_sent_as_is() -> None:
    data = encode(Image.new("RGB", (640, 480), "white"), "PNG")
    prepared = prepare_image(data, "image/png")
    assert prepared.data == data and prepared.note == ""


@pytest.mark.slow  # seconds of CPU
@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_oversized_image_is_downscaled_keeping_format(fmt: str, mime: str) -> None:
    data = encode(Image.new("RGB", (4000, 3000), (200, 120, 40)), fmt)
    prepared = prepare_image(data, mime, ImageLimits(max_side=1024))
    assert max(prepared.width, prepared.height) == 1024
    assert prepared.mime_type == mime and prepared.data.startswith(SNIFF[mime])
    with Image.open(io.BytesIO(prepared.data)) as check:
        assert check.format == fmt and check.size == (1024, 768)
    assert prepared.note == "downscaled 4000x3000 -> 1024x768"


@pytest.mark.slow  # seconds of CPU
def test_9000x7000_poster_fits_the_pixel_limit() -> None:
    data = encode(Image.new("L", (9000, 7000), 255), "PNG")
    prepared = prepare_image(data, "image/png")
    assert (prepared.width, prepared.height) == (2048, 1593)


@pytest.mark.slow  # seconds of CPU
def test_byte_limit_shrinks_further_until_it_fits() -> None:
    noise = Image.effect_noise((2000, 2000), 100).convert("RGB")
    data = encode(noise, "PNG")
    prepared = prepare_image(data, "image/png", ImageLimits(max_side=2000, max_bytes=1_000_000))
    assert len(prepared.data) <= 1_000_000 and prepared.width < 2000


@pytest.mark.slow  # seconds of CPU
def test_animated_gif_over_the_limit_is_sent_as_its_first_frame() -> None:
    frames = [Image.new("P", (3000, 3000), i) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    prepared = prepare_image(out.getvalue(), "image/gif", ImageLimits(max_side=1000))
    with Image.open(io.BytesIO(prepared.data)) as check:
        assert getattr(check, "n_frames", 1) == 1 and check.size == (1000, 1000)
    assert "first frame" in prepared.note


def test_garbage_is_a_corrupt_error() -> None:
    with pytest.raises(Corrupt):
        prepare_image(b"\x89PNG\r\n\x1a\nnot really", "image/png")
