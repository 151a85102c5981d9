"""The run plan, and the rules each front end asks of one place (plan, upload cap, id, minimum size)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

from painterly import images as im
from painterly.cli import main
from painterly.config import MIN_AUTO_SCALE, MIN_SIZE, ConfigError, StyleConfig, field_meta
from painterly.images import ImageError
from painterly.jobs import JobStore
from painterly.plan import RunPlan, scale_plan


def test_auto_scales_start_every_size_from_the_same_512_px_picture():
    # scales=0 (the default): halve down to MIN_AUTO_SCALE, never under it; one scale below 1024.
    def sides(size: int, **kw) -> list[int]:
        return [max(wh) for wh, _ in scale_plan(StyleConfig(size=size, steps=90, **kw), 600, 400)]

    assert StyleConfig().scales == 0 and MIN_AUTO_SCALE == 512
    assert sides(256) == [256] and sides(512) == [512] and sides(700) == [700]
    assert sides(768) == [512, 768] and sides(1024) == [512, 1024] and sides(1500) == [512, 876, 1500]
    assert sides(2048) == [512, 1024, 2048] and sides(4096) == [512, 1024, 2048, 4096]
    assert sides(384, scales=2) == [192, 384]  # an explicit count is kept as given
    assert [n for _, n in scale_plan(StyleConfig(size=1024, steps=90), 600, 400)] == [60, 30]


def test_plan_answers_sizes_steps_and_work():
    plan = RunPlan.build(StyleConfig(size=1024, steps=90), 600, 400)
    assert plan.scales == (((512, 341), 60), ((1024, 683), 30))
    assert plan.final_size == (1024, 683) and plan.steps == 90
    assert plan.end_of_scale(1) == 60 and plan.end_of_scale(2) == 90
    assert plan.work_done(0) == 0 and plan.work_left(90) == 0
    assert plan.work_done(61) == 60 * 512 * 341 + 1024 * 683
    assert plan.work_done(61) + plan.work_left(61) == plan.work_done(90)
    assert plan.seconds(lambda w, h: 1.0) == 90


def test_eta_costs_steps_by_pixels():
    # The worker's ETA: from the time of one step at the current scale.
    plan = RunPlan((((16, 16), 10), ((32, 32), 5)))
    assert plan.seconds_left(step=4, scale=1, seconds_per_step=1.0) == pytest.approx(6 + 5 * 4)
    assert plan.seconds_left(step=12, scale=2, seconds_per_step=2.0) == pytest.approx(3 * 2.0)
    assert plan.seconds_left(step=15, scale=2, seconds_per_step=2.0) == 0
    # The CLI's ETA: from the time the steps so far took; both weigh steps by their pixels.
    assert plan.eta(step=10, elapsed=10.0) == pytest.approx(5 * 4 * 1.0)
    assert plan.eta(step=0, elapsed=1.0) is None and plan.eta(step=16, elapsed=1.0) is None


def test_the_vocabulary_and_the_plan_are_torch_free_and_config_imports_nothing_of_ours():
    code = (
        "import sys, painterly.config as c\n"
        "ours = sorted(m for m in sys.modules if m.startswith('painterly.') and m != 'painterly.config')\n"
        "assert not ours, ours\n"
        "import painterly.plan, painterly.reporter, painterly.flags, painterly.precision\n"
        "assert painterly.precision.resolve('auto', 'cpu') in ('fp32', 'bf16')\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_one_minimum_size_from_the_size_field():
    assert MIN_SIZE == field_meta("size")["min"] == 16
    # Even the smallest scale and a tiny style scale stay at the minimum.
    assert min(scale_plan(StyleConfig(size=MIN_SIZE, steps=4, scales=1), 300, 20)[0][0]) >= 1
    assert max(scale_plan(StyleConfig(size=64, steps=8, scales=3), 60, 40)[0][0]) == MIN_SIZE


@pytest.mark.parametrize("command", ["stylize", "preview"])
def test_too_small_a_size_is_one_refusal_on_every_command(capsys, tmp_path, content_img, style_img, command):
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    content_img.save(content)
    style_img.save(style)
    rc = main([command, str(content), str(style), "-o", str(tmp_path / "out.png"), "--size", "8"])
    assert rc == 2
    assert capsys.readouterr().err == "painterly: error: --size must be at least 16, got 8\n"


@pytest.mark.parametrize("command", ["stylize", "preview"])
def test_a_blend_that_does_not_fit_is_one_refusal_on_every_command(capsys, tmp_path, content_img, style_img, command):
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    content_img.save(content)
    style_img.save(style)
    rc = main([command, str(content), str(style), "-o", str(tmp_path / "out.png"), "--style-blend", "1", "2"])
    assert rc == 2
    assert capsys.readouterr().err == "painterly: error: --style-blend has 2 weights for 1 style image\n"


def test_style_count_refusals_are_worded_alike_in_the_engine_preview_and_store(tmp_path, content_img, style_img):
    from painterly.preview import preview
    from painterly.stylize import stylize

    blend = StyleConfig(size=32, steps=1, style_blend=(1.0, 2.0))
    store = JobStore(tmp_path / "data")
    photo = im.encode_image(content_img, "PNG")
    painting = im.encode_image(style_img, "PNG")
    messages = set()
    for call in (
        lambda: stylize(content_img, style_img, blend),
        lambda: preview(content_img, style_img, size=32, style_blend=(1.0, 2.0)),
        lambda: store.submit(photo, [painting], blend),
        lambda: RunPlan.build(blend, 40, 30, n_styles=1),
    ):
        with pytest.raises(ConfigError) as e:
            call()
        messages.add(str(e.value))
    assert messages == {"style_blend has 2 weights for 1 style image"}
    none = set()
    for call in (
        lambda: stylize(content_img, [], StyleConfig(size=32, steps=1)),
        lambda: preview(content_img, [], size=32),
        lambda: store.submit(photo, [], StyleConfig(size=32, steps=1)),
    ):
        with pytest.raises(ImageError) as e:
            call()
        none.add(str(e.value))
    assert none == {"at least one style image is needed; add at least one painting"}


def test_the_store_records_the_plan(tmp_path, content_img, style_img):
    store = JobStore(tmp_path / "data")
    cfg = StyleConfig(size=1024, steps=9)
    job = store.get(store.submit(im.encode_image(content_img, "PNG"), [im.encode_image(style_img, "PNG")], cfg))
    plan = RunPlan.build(cfg, *content_img.size)
    assert (job.width, job.height) == plan.final_size and job.scales == len(plan.scales) == 2


def test_one_upload_check_and_message_for_the_studio_and_the_store(tmp_path, monkeypatch, content_img):
    monkeypatch.setattr(im, "MAX_INPUT_BYTES", 1000)
    data = im.encode_image(Image.new("RGB", (300, 300), "white"), "PNG") + b"\0" * 2000
    with pytest.raises(ImageError) as direct:
        im.check_upload_size(data, "content image")
    with pytest.raises(ImageError) as stored:
        JobStore(tmp_path / "data").submit(data, [data], StyleConfig())
    assert str(direct.value) == str(stored.value)
    assert "upload limit" in str(direct.value)


def test_one_id_rule_for_jobs_and_owner_tokens(tmp_path):
    from painterly.jobs.store import new_id, valid_id

    token = new_id()
    assert valid_id(token) and not valid_id(token + "\n") and not valid_id("../" + token) and not valid_id(None)
    assert JobStore(tmp_path / "data").get(token + "\n") is None
    try:
        from painterly.app import logic
    except ImportError:  # the studio's extras are not installed
        return
    assert logic.valid_token(token) and not logic.valid_token(token + "\n")
    assert valid_id(logic.new_owner_token())


def test_pictures_too_thin_for_the_network_are_refused_alike_before_it_loads(capsys, tmp_path, content_img):
    from painterly.stylize import stylize

    strip = Image.new("RGB", (400, 10), "red")  # 40:1
    cfg = StyleConfig(size=64, steps=1, scales=1)
    store = JobStore(tmp_path / "data")
    thin_photo = "the photo is 400 × 10 px, too long and thin to paint at this size: its short side would be 2 px"
    for call in (
        lambda: RunPlan.build(cfg, *strip.size),
        lambda: stylize(strip, content_img, cfg),
        lambda: store.submit(im.encode_image(strip, "PNG"), [im.encode_image(content_img, "PNG")], cfg),
    ):
        with pytest.raises(ImageError, match=thin_photo) as e:
            call()
        assert str(e.value).endswith("needs at least 16; crop it to at most 4:1, or choose a larger size")
    with pytest.raises(ImageError, match="^the painting is 400 × 10 px, too long and thin"):
        stylize(content_img, strip, cfg)
    with pytest.raises(ImageError, match="^painting 2 is 400 × 10 px"):
        stylize(content_img, [content_img, strip], cfg)
    assert store.list("") == []  # nothing queued
    # A larger size gives the strip its 16 px: planned, not refused.
    assert min(RunPlan.build(cfg.replace(size=640), *strip.size).final_size) == 16
    # The command line: one line, before the network loads, and no output file.
    strip.save(tmp_path / "strip.png")
    content_img.save(tmp_path / "c.png")
    out = tmp_path / "out.png"
    assert main(["stylize", str(tmp_path / "strip.png"), str(tmp_path / "c.png"), "-o", str(out), "--size", "64"]) == 1
    assert capsys.readouterr().err.startswith("painterly: error: the photo is 400 × 10 px, too long and thin")
    assert not out.exists()


def test_a_blend_weight_that_is_not_a_number_is_a_usage_error(capsys, tmp_path, content_img):
    content_img.save(tmp_path / "c.png")
    for bad in ("nan", "inf"):
        rc = main(["stylize", str(tmp_path / "c.png"), str(tmp_path / "c.png"), "-o", str(tmp_path / "o.png"),
                   "--style-blend", bad])  # fmt: skip
        assert rc == 2
        assert capsys.readouterr().err.startswith("painterly: error: --style-blend must be non-negative numbers")
