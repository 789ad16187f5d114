"""#17 low: look_at_picture answers a bad picture with a message, and decodes no bomb.

Its picture input was a gr.Image, which decodes on arrival: seven kinds of
bad file failed inside Gradio with {"error": null}, and a 9000x9000 PNG
was decoded (+387 MB) before the app's 40 MP check could read its header.
"""

from __future__ import annotations

import io
import struct
import zlib

import psutil
import pytest

from assistant.settings import Settings
from tests.security.served import call, file_data, serve


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG of width x height that compresses to almost nothing (a bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = zlib.compress(b"\x00" * (width * 3 + 1) * height, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", raw)
        + chunk(b"IEND", b"")
    )


def _small_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, "PNG")
    return out.getvalue()


BAD = {
    "text named .png": b"hello, I am not a picture",
    "empty": b"",
    "truncated": _small_png()[:40],
    "html named .png": b"<html><script>alert(1)</script></html>",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with serve(Settings(home=tmp_path_factory.mktemp("pics") / "home")) as s:
        yield s


@pytest.mark.parametrize("name", BAD)
def test_a_bad_picture_gets_a_message(served, name):
    browser = served.browser()
    [path] = browser.post(
        "/gradio_api/upload", files={"files": (f"{name}.png", BAD[name], "image/png")}
    ).json()
    status, output = call(browser, "look_at_picture", [file_data(path), "what is it?"])
    assert '"error": null' not in output and "data: null" not in output, output[-300:]
    assert "event: error" in output and len(output.split("event: error", 1)[1].strip()) > 20


def test_a_pixel_bomb_is_not_decoded_on_arrival(served):
    bomb = _png_header_only(9000, 9000)
    assert len(bomb) < 400_000
    browser = served.browser()
    [path] = browser.post(
        "/gradio_api/upload", files={"files": ("bomb.png", bomb, "image/png")}
    ).json()
    before = psutil.Process().memory_info().rss
    status, output = call(browser, "look_at_picture", [file_data(path), "what is it?"])
    grown = psutil.Process().memory_info().rss - before
    assert "event: error" in output
    assert grown < 150 * 2**20, f"memory grew {grown / 2**20:.0f} MB"
