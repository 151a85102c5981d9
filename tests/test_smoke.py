"""The engine end to end on tiny images: it runs, lowers the style loss and keeps the size."""

from painterly import StyleConfig, stylize


def test_stylize_lowers_loss_and_keeps_aspect(content_img, style_img):
    seen = []
    out = stylize(content_img, style_img, StyleConfig(size=48, steps=12, scales=1), on_progress=seen.append)
    assert out.size == (48, 32)
    assert len(seen) == 12
    assert seen[-1].losses["style"] < 0.5 * seen[0].losses["style"]
