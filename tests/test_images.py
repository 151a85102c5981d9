"""Image I/O: every bad input gets a one-line ImageError; odd modes load as RGB; atomic saving."""

from __future__ import annotations

import io
import os
import stat
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from painterly import images as im
from painterly.images import ImageError, load_image, save_image


def png_header(width: int, height: int) -> bytes:
    """A PNG that only declares its size: what a decompression bomb looks like before decoding."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def photo(w: int = 64, h: int = 48) -> Image.Image:
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([xx * 255 // (w - 1), yy * 255 // (h - 1), np.full_like(xx, 128)], -1)
    return Image.fromarray(a.astype(np.uint8), "RGB")


# --- bad inputs -------------------------------------------------------------------------------


def _bad_inputs(tmp: Path) -> dict[str, tuple[object, str]]:
    png, jpg = encoded(photo(), "PNG"), encoded(photo(), "JPEG")
    (tmp / "empty.png").write_bytes(b"")
    (tmp / "text.jpg").write_bytes(b"hello, I am a text file\n")
    return {
        "non-image bytes": (b"<html>not an image</html>", "not an image Pillow can read"),
        "non-image file": (tmp / "text.jpg", "not an image Pillow can read"),
        "truncated png": (png[: len(png) // 2], "damaged or truncated"),
        "truncated jpeg": (jpg[: len(jpg) // 2], "damaged or truncated"),
        "png cut in the header": (png[:30], "not an image|damaged or truncated"),
        "zero-byte file": (tmp / "empty.png", "the file is empty"),
        "zero-byte upload": (b"", "the upload is empty"),
        "missing file": (tmp / "nope.png", "no such file"),
        "a folder": (tmp, "a folder, not an image file"),
        "a device": (Path("/dev/zero"), "not a regular file"),
        "over the pixel cap": (png_header(9000, 8000), "72 megapixels, over the 64 MP limit"),
        "decompression bomb": (png_header(40000, 40000), "too large to open safely"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "non-image bytes",
        "non-image file",
        "truncated png",
        "truncated jpeg",
        "png cut in the header",
        "zero-byte file",
        "zero-byte upload",
        "missing file",
        "a folder",
        "a device",
        "over the pixel cap",
        "decompression bomb",
    ],
)
def test_bad_input_gets_a_one_line_image_error(tmp_path, case):
    if case == "a device" and not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    source, message = _bad_inputs(tmp_path)[case]
    with pytest.raises(ImageError, match=message) as info:
        load_image(source, name="style image")
    text = str(info.value)
    assert "\n" not in text and text.startswith("style image")


def test_pixel_cap_is_a_parameter():
    with pytest.raises(ImageError, match="over the"):
        load_image(encoded(photo(64, 48), "PNG"), max_pixels=64 * 48 - 1)
    assert load_image(encoded(photo(64, 48), "PNG"), max_pixels=64 * 48).size == (64, 48)


def test_file_objects_and_pil_images_are_accepted(tmp_path):
    data = encoded(photo(), "PNG")
    buf = io.BytesIO(data)
    assert load_image(buf).size == (64, 48) and not buf.closed  # the caller's file stays open
    assert load_image(photo().convert("L")).mode == "RGB"


# --- odd modes ----------------------------------------------------------------------------------


def test_cmyk_jpeg_loads_as_rgb():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    img = load_image(encoded(cmyk, "JPEG", quality=100))
    assert img.mode == "RGB"
    r, g, b = np.asarray(img, dtype=int).reshape(-1, 3).mean(0)
    assert r > 230 and g < 30 and b < 30


def test_16_bit_png_scales_its_range():
    ramp = (np.arange(256 * 4, dtype=np.uint32).reshape(4, 256) * 64).clip(0, 65535).astype(np.uint16)
    img16 = Image.fromarray(ramp)  # mode I;16
    assert img16.mode == "I;16"
    img = load_image(encoded(img16, "PNG"))
    a = np.asarray(img, dtype=int)
    assert img.mode == "RGB" and (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()
    expected = np.round(ramp.astype(float) / 65535 * 255)
    assert np.abs(a[..., 0] - expected).max() <= 1  # 65535 -> 255, not clipped at 255/65535
    assert a.max() == 255 and a.min() == 0


def test_palette_with_transparency_composites_on_white():
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 200, 20, 20] + [0] * (254 * 3))
    pal.paste(0, (0, 0, 4, 8))  # left half uses index 0, which is transparent
    img = load_image(encoded(pal, "PNG", transparency=0))
    a = np.asarray(img)
    assert img.mode == "RGB"
    assert (a[:, :4] == 255).all()  # transparent -> white, not black
    assert (a[:, 4:] == [200, 20, 20]).all()


def test_greyscale_loads_as_three_equal_channels():
    grey = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4, "L")
    a = np.asarray(load_image(encoded(grey, "PNG")))
    assert a.shape == (8, 8, 3) and (a[..., 0] == np.asarray(grey)).all() and (a[..., 2] == a[..., 0]).all()


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_on_white(mode):
    rgba = np.zeros((4, 3, 4), dtype=np.uint8)
    rgba[..., :3] = 40
    rgba[:, 0, 3] = 0  # transparent
    rgba[:, 1, 3] = 255  # opaque
    rgba[:, 2, 3] = 128  # half
    img = Image.fromarray(rgba, "RGBA").convert(mode)
    a = np.asarray(load_image(encoded(img, "PNG")), dtype=int)
    assert (a[:, 0] == 255).all() and (a[:, 1] == 40).all()
    assert np.abs(a[:, 2] - (40 * 128 + 255 * 127) / 255).max() <= 1


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 10, 10))  # red in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    out = load_image(encoded(img, "JPEG", exif=exif, quality=95))
    assert out.size == (20, 40)  # dimensions swapped
    a = np.asarray(out, dtype=int)
    assert a[3, 16, 0] > 200 and a[3, 16, 2] < 60  # the corner is now top-right
    assert a[3, 3, 2] > 200 and a[3, 3, 0] < 60


# --- saving ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, magic", [("a.png", b"\x89PNG"), ("a.JPG", b"\xff\xd8"), ("a.jpeg", b"\xff\xd8"), ("a.webp", b"RIFF")]
)
def test_save_format_from_extension_and_atomic(tmp_path, name, magic):
    path = save_image(photo(), tmp_path / name)
    assert path.read_bytes().startswith(magic)
    assert Image.open(path).size == (64, 48)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary files left


def test_saved_file_has_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    path = save_image(photo(), tmp_path / "a.png")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask  # as open() makes it, not mkstemp's 0600


def test_save_refuses_unsupported_extension_and_missing_folder(tmp_path):
    with pytest.raises(ImageError, match="unsupported output type '.gif'"):
        save_image(photo(), tmp_path / "a.gif")
    with pytest.raises(ImageError, match="unsupported output type"):
        save_image(photo(), tmp_path / "noext")
    with pytest.raises(ImageError, match="does not exist"):
        save_image(photo(), tmp_path / "no" / "a.png")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_leaves_the_old_file_and_no_temp(tmp_path):
    (tmp_path / "a.png").mkdir()  # os.replace onto a folder fails after the temp file is written
    with pytest.raises(OSError):
        save_image(photo(), tmp_path / "a.png")
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
    old = save_image(photo(8, 8), tmp_path / "b.png").read_bytes()
    assert Image.open(io.BytesIO(old)).size == (8, 8)


# --- sizes and colour ------------------------------------------------------------------------------


def test_fit_size_and_resize_long_side():
    assert im.fit_size(4000, 3000, 512) == (512, 384)
    assert im.fit_size(300, 4000, 40) == (3, 40)
    assert im.fit_size(1000, 1, 10) == (10, 1)
    assert im.resize_long_side(photo(64, 48), 32).size == (32, 24)
    assert im.resize_long_side(photo(64, 48), 128).size == (128, 96)


def test_luminance_transfer_keeps_result_brightness_and_content_colour():
    result = Image.new("RGB", (8, 8), (120, 120, 120))
    content = Image.new("RGB", (8, 8), (160, 90, 70))  # colours inside the RGB gamut at that brightness
    out = np.asarray(im.luminance_transfer(result, content), dtype=float) / 255
    yiq = out.reshape(-1, 3) @ im._RGB2YIQ.T
    want_iq = (np.array([160, 90, 70]) / 255) @ im._RGB2YIQ.T
    assert np.allclose(yiq[:, 0], 120 / 255, atol=0.01) and np.allclose(yiq[:, 1:], want_iq[1:], atol=0.01)
    assert im.luminance_transfer(result, content, 0.0) is result


def test_match_color_matches_mean_and_covariance():
    rng = np.random.default_rng(0)
    style = Image.fromarray((rng.random((32, 32, 3)) * [255, 60, 60]).astype(np.uint8))
    content = Image.fromarray((rng.random((16, 16, 3)) * [40, 100, 250]).astype(np.uint8))
    out = np.asarray(im.match_color(style, content), dtype=float).reshape(-1, 3)
    c = np.asarray(content, dtype=float).reshape(-1, 3)
    assert np.abs(out.mean(0) - c.mean(0)).max() < 3
    assert np.abs(np.cov(out, rowvar=False) - np.cov(c, rowvar=False)).max() < 0.05 * np.cov(c, rowvar=False).max()
    assert im.match_color(style, content, 0.0) is style


def test_tensor_round_trip():
    torch = pytest.importorskip("torch")
    t = im.to_tensor(photo())
    assert t.shape == (1, 3, 48, 64) and t.dtype == torch.float32 and 0 <= float(t.min()) <= float(t.max()) <= 1
    assert (np.asarray(im.to_image(t)) == np.asarray(photo())).all()
    assert np.asarray(im.to_image(t * 3 - 1)).max() == 255  # out-of-range values are clamped


def test_a_pipe_and_an_unreadable_file_say_what_they_are(tmp_path, monkeypatch):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="^photo .*fifo: not a regular file"):
        load_image(fifo, name="photo")  # refused without opening it: opening a pipe would block
    picture = tmp_path / "p.png"
    Image.new("RGB", (8, 8)).save(picture)

    def denied(*args, **kwargs):  # as root, chmod 000 does not stop a read: the error is simulated
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("builtins.open", denied)
    with pytest.raises(ImageError, match=r"^photo .*p\.png: cannot read it \(permission denied\)$"):
        load_image(picture, name="photo")


# --- output for print (issue 10) -------------------------------------------------------------


def _srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _read_png16(path: Path) -> tuple[np.ndarray, dict[bytes, bytes]]:
    """A plain decoder for what _write_png16 writes (filter 0 rows), and its other chunks."""
    data, chunks, idat = path.read_bytes(), {}, b""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i = 8
    while i < len(data):
        n = int.from_bytes(data[i : i + 4], "big")
        tag, body = data[i + 4 : i + 8], data[i + 8 : i + 8 + n]
        assert zlib.crc32(tag + body) == int.from_bytes(data[i + 8 + n : i + 12 + n], "big")
        if tag == b"IDAT":
            idat += body
        else:
            chunks[tag] = body
        i += 12 + n
    w, h = int.from_bytes(chunks[b"IHDR"][:4], "big"), int.from_bytes(chunks[b"IHDR"][4:8], "big")
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 6 * w)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].copy().view(">u2").reshape(h, w, 3).astype(np.uint16), chunks


def test_16_bit_png_and_tiff_keep_every_level_the_profile_and_the_dpi(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 65536, (300, 37, 3), dtype=np.uint16)  # more rows than one band (ROWS)
    info = im.PrintInfo(icc=_srgb_profile(), dpi=(300.0, 300.0))
    back, chunks = _read_png16(save_image(a, tmp_path / "a.png", info=info))
    assert np.array_equal(back, a)
    assert chunks[b"IHDR"][8:10] == bytes([16, 2])  # 16 bits, RGB
    assert zlib.decompress(chunks[b"iCCP"].split(b"\x00", 1)[1][1:]) == info.icc
    assert Image.open(tmp_path / "a.png").info["dpi"] == pytest.approx((300, 300), abs=0.1)  # Pillow reads pHYs

    import tifffile

    with tifffile.TiffFile(save_image(a, tmp_path / "a.tif", info=info)) as tif:
        page = tif.pages[0]
        assert np.array_equal(page.asarray(), a) and page.dtype == np.uint16
        assert page.tags["InterColorProfile"].value == info.icc
        assert page.tags["XResolution"].value == (300, 1)
    with pytest.raises(ImageError, match="16-bit output is written as .png or .tif"):
        save_image(a, tmp_path / "a.jpg")


def test_8_bit_outputs_carry_the_photos_profile_and_dpi(tmp_path):
    src = tmp_path / "photo.jpg"
    photo().save(src, icc_profile=_srgb_profile(), dpi=(240, 240))
    info = im.print_info(src)
    assert info.icc == _srgb_profile() and info.dpi == (240.0, 240.0)
    for name in ("o.png", "o.jpg", "o.tif"):
        out = Image.open(save_image(photo(), tmp_path / name, info=info))
        assert out.info.get("icc_profile") == info.icc, name
        assert tuple(round(float(v)) for v in out.info["dpi"]) == (240, 240), name
    assert im.print_info(tmp_path / "none.png") == im.PrintInfo()  # missing: nothing, no error
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8)).save(cmyk, icc_profile=b"\0" * 16 + b"CMYK" + b"\0" * 108)
    assert im.print_info(cmyk).icc is None  # a CMYK profile would misdescribe an RGB result


def test_to_array_converts_in_bands_to_8_or_16_bits():
    import torch

    t = torch.linspace(-0.5, 1.5, 3 * 600 * 5).reshape(1, 3, 600, 5)
    a8, a16 = im.to_array(t, 8), im.to_array(t, 16)
    assert a8.dtype == np.uint8 and a16.dtype == np.uint16 and a8.shape == a16.shape == (600, 5, 3)
    ref = t[0].clamp(0, 1).permute(1, 2, 0).numpy()
    assert np.array_equal(a8, (ref * 255 + 0.5).astype(np.uint8))
    assert np.abs(a16 / 65535.0 - ref).max() <= 0.5 / 65535 + 1e-7
    img = Image.fromarray(a8, "RGB")
    kept = a8.copy()
    im.keep_colours(kept, photo(5, 600))
    assert np.array_equal(np.asarray(im.luminance_transfer(img, photo(5, 600))), kept)
