"""The run plan, and the rules each front end asks of one place (plan, upload cap, id, minimum size)."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from painterly import images as im
from painterly.cli import main
from painterly.config import MIN_AUTO_SCALE, MIN_SIZE, ConfigError, StyleConfig, field_meta
from painterly.images import ImageError
from painterly.jobs import JobStore
from painterly.plan import CHECKPOINT_PIXELS, PlanError, RunPlan, StepCost, recompute_factor, scale_plan


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
    assert plan.work_done(0) == 0 and plan.work_done(90) == 60 * 512 * 341 + 30 * 1024 * 683
    assert plan.work_done(61) == 60 * 512 * 341 + 1024 * 683
    # A 1 s step: each scale's steps, and its targets one step more (plan.TARGET_STEPS).
    cfg = StyleConfig(size=1024, steps=90, precision="fp32")
    one_second = StepCost(overhead=1.0, per_mp=0.0, precision="fp32", setup=2.0)
    assert plan.scale_seconds(cfg, one_second) == (61, 31) and plan.estimate(cfg, one_second) == 94


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


# --- the memory plan (issue 10: prints) -----------------------------------------------------


def test_block_geometry_from_the_layers():
    from painterly.plan import block_geometry, layer_stride, receptive_field

    assert receptive_field("relu5_1") == 156 and receptive_field("relu4_1") == 68 and receptive_field("relu3_1") == 24
    assert layer_stride("relu1_1") == 1 and layer_stride("pool1") == 2 and layer_stride("relu5_1") == 16
    assert block_geometry("relu5_1") == (160, 16) and block_geometry("pool5") == (288, 32)


def test_tiles_cover_the_image_once_with_clipped_margins():
    from painterly.plan import tiles

    cut = tiles(100, 70, 32, 16)
    assert len(cut) == 4 * 3
    covered = np.zeros((70, 100), int)
    for t in cut:
        x0, y0, x1, y1 = t.core
        covered[y0:y1, x0:x1] += 1
        assert t.pad == (max(0, x0 - 16), max(0, y0 - 16), min(100, x1 + 16), min(70, y1 + 16))
    assert (covered == 1).all()


def test_plan_runs_whole_where_it_fits_and_in_blocks_where_not():
    # bf16 named, not "auto": auto is the CPU's choice, and an fp32 run needs twice the memory
    # (on a CPU without bf16 units the 2048 px scale goes in blocks too under 8 GB)
    cfg = StyleConfig(size=4096, max_memory="8GB", precision="bf16")
    mem = RunPlan.build(cfg, 3000, 2000).memory(cfg)
    assert [s.size for s in mem.scales] == [(512, 341), (1024, 683), (2048, 1365), (4096, 2731)]
    assert [s.block for s in mem.scales[:-1]] == [0, 0, 0]  # the coarse scales run whole
    last = mem.scales[-1]
    assert last.block and last.block % 16 == 0 and last.tiles > 1 and mem.halo == 160
    assert mem.peak <= 8 * 10**9 and all(s.peak <= mem.budget for s in mem.scales)
    # less memory, smaller blocks, and the 2048 px scale in blocks too
    tight = RunPlan.build(cfg, 3000, 2000).memory(cfg, 6 * 10**9)
    assert tight.scales[-1].block < last.block and tight.peak <= 6 * 10**9
    assert (tight.scales[2].block, tight.scales[2].tiles) == (1024, 4)
    assert RunPlan.build(cfg, 3000, 2000).memory(cfg, 10**12).scales[-1].block == 0  # room for all
    # forced block size (tests, or a user who knows), at every scale larger than it
    forced_cfg = cfg.replace(block_size=1008)
    forced = RunPlan.build(forced_cfg, 3000, 2000).memory(forced_cfg, 10**12)
    assert [s.block for s in forced.scales] == [0, 1008, 1008, 1008]  # 1024 px > 1008


def test_plan_refuses_what_cannot_fit_and_says_what_would():
    from painterly.plan import PlanError

    cfg = StyleConfig(size=8192, max_memory="6GB")
    with pytest.raises(PlanError, match=r"8192x5461 needs about .* GB .* the largest size that fits is about \d+ px"):
        RunPlan.build(cfg, 3000, 2000).memory(cfg)
    with pytest.raises(PlanError, match="nothing fits"):  # a budget under the smallest block
        RunPlan.build(cfg, 3000, 2000).memory(cfg, 10**8)
    sliced = StyleConfig(size=4096, style_loss="sliced", max_memory="6GB")
    with pytest.raises(PlanError, match="'sliced' style loss .* cannot run in blocks"):
        RunPlan.build(sliced, 3000, 2000).memory(sliced)
    assert issubclass(PlanError, ConfigError)


# Complete runs (the default preset's scales, chelsea 451 x 300, bf16), traced with
# `python -m benchmarks.memtrace` after the allocator setting (benchmarks/RESULTS.md, "Prints"):
# (size, steps, scales (0: the preset's), the blocks each scale ran in, measured peak RSS in MiB).
COMPLETE_RUNS = [
    (1024, 80, 0, (0, 0), 2611),
    (2048, 40, 0, (0, 0, 0), 6302),
    (2048, 40, 0, (0, 0, 688), 3706),
    (4096, 31, 0, (0, 0, 1024, 688), 5011),
    (4096, 80, 0, (0, 0, 1024, 592), 5720),  # the complete default 4096 px print under 6 GB
    (8192, 2, 1, (1376,), 11381),  # two full-size steps at 8192 px under 16 GB
]


@pytest.mark.parametrize("size, steps, scales, blocks, measured", COMPLETE_RUNS)
def test_the_memory_model_is_above_complete_runs_measured_and_near_them(size, steps, scales, blocks, measured):
    # A plan under a run's peak lets the run pass its budget; one far above wastes the machine.
    from painterly.plan import ScaleMemory, predict_peak, whole_before

    cfg = StyleConfig(size=size, steps=steps, precision="bf16", **({"scales": scales} if scales else {}))
    plan = RunPlan.build(cfg, 451, 300)
    ran = [ScaleMemory(wh, n, b, 0, 0) for (wh, n), b in zip(plan.scales, blocks, strict=True)]
    predicted = max(predict_peak(cfg, s.size, s.steps, s.block, whole_before(ran[:i])) for i, s in enumerate(ran))
    assert measured * 2**20 <= predicted <= 1.15 * measured * 2**20


def test_the_memory_model_grows_with_size_and_steps_and_blocks_save_memory():
    from painterly.plan import lbfgs_history, predict_peak

    cfg = StyleConfig(precision="bf16")
    sides = [512, 1024, 2048, 4096, 8192]
    whole = [predict_peak(cfg, (s, s * 2 // 3), 10) for s in sides]
    blocked = [predict_peak(cfg, (s, s * 2 // 3), 10, 512) for s in sides]
    assert whole == sorted(whole) and blocked == sorted(blocked)
    assert all(b < w for b, w in zip(blocked[2:], whole[2:]))  # where blocks are smaller than the image
    # a complete run's full-size scale holds L-BFGS's whole history: more steps, more memory, up to it
    wh, n = (4096, 2731), lbfgs_history(4096 * 2731)
    assert predict_peak(cfg, wh, 2, 688) < predict_peak(cfg, wh, n + 1, 688) == predict_peak(cfg, wh, n + 5, 688)
    assert predict_peak(cfg.replace(precision="fp32"), wh, n, 688) > predict_peak(cfg, wh, n, 688)


@pytest.mark.parametrize("budget_gb", [3, 4, 6, 8, 12, 16])
def test_every_scale_of_the_plan_fits_its_budget(budget_gb):
    cfg = StyleConfig(size=8192)
    try:
        mem = RunPlan.build(cfg, 451, 300).memory(cfg, budget_gb * 10**9)
    except PlanError:
        assert budget_gb < 16  # 8192 px is refused only under budgets too small for it
        return
    assert all(s.peak <= budget_gb * 10**9 for s in mem.scales) and mem.scales[0].block == 0


def test_fallback_halves_the_blocks_until_it_cannot():
    from painterly.plan import PlanError

    cfg = StyleConfig(size=512, max_memory="64GB")
    mem = RunPlan.build(cfg, 600, 400).memory(cfg)
    assert mem.scales[0].block == 0
    sizes = []
    with pytest.raises(PlanError, match="out of memory at 512x341 even in blocks of"):
        while True:
            mem = mem.smaller(cfg, 0)
            sizes.append(mem.scales[0].block)
    assert sizes == [256, 128, 64, 32, 16]


def test_max_memory_parses_amounts():
    from painterly.config import parse_bytes

    assert (
        parse_bytes("6GB") == 6 * 10**9 and parse_bytes("512MiB") == 512 * 2**20 and parse_bytes("2.5 gb") == 25 * 10**8
    )
    assert parse_bytes("1000") == 1000
    for bad in ("6XB", "GB", "-1GB", "six"):
        with pytest.raises(ConfigError, match="max_memory must be an amount"):
            StyleConfig(max_memory=bad)
    with pytest.raises(ConfigError, match="block_size must be a multiple of 16"):
        StyleConfig(block_size=100)


def test_cli_plan_prints_and_runs_nothing(tmp_path, capsys):
    photo = tmp_path / "p.png"
    Image.new("RGB", (600, 400), (90, 120, 150)).save(photo)
    out = tmp_path / "o.png"
    assert (
        main(["stylize", str(photo), str(photo), "-o", str(out), "--size", "4096", "--max-memory", "6GB", "--plan"])
        == 0
    )
    text = capsys.readouterr().out
    assert (
        "memory budget 6.0 GB" in text
        and "whole image" in text
        and "blocks of" in text
        and re.search(r"about [\d.]+ (s|min) on this machine", text)
    )
    assert not out.exists()
    assert main(["stylize", str(photo), str(photo), "-o", str(out), "--size", "8192", "--max-memory", "6GB"]) == 1
    assert "the largest size that fits" in capsys.readouterr().err and not out.exists()


def test_cli_plan_times_this_machine(tmp_path, capsys, monkeypatch):
    # --plan's time is the machine's own cost (painterly.calibrate, as the studio's), not the one
    # written in the code: with a step timed at exactly 1 s, 80 steps at 512 px are 80 s, the
    # scale's targets one step more (plan.TARGET_STEPS) and the setup 4 s: 85 s, the run plan's
    # estimate, as the studio shows it.
    import painterly.calibrate

    monkeypatch.setattr(painterly.calibrate, "measure", lambda: StepCost(overhead=1.0, per_mp=0.0, precision="fp32"))
    photo = tmp_path / "p.png"
    Image.new("RGB", (600, 400), (90, 120, 150)).save(photo)
    cfg = ["--size", "512", "--steps", "80", "--precision", "fp32"]
    assert main(["stylize", str(photo), str(photo), "-o", str(tmp_path / "o.png"), *cfg, "--plan"]) == 0
    out = capsys.readouterr()
    assert "80 steps, whole image, peak" in out.out and ", about 81 s\n" in out.out
    assert "about 85 s on this machine" in out.out
    assert "timing a few small steps" in out.err


def test_the_time_counts_block_modes_extra_work():
    # A 4096 px print under 6 GB runs its full-size scale in blocks: each step does more work than
    # a whole-image step (the overlaps, a statistics pass). The ETA once left that out and said
    # 14 min for a run of 31 (benchmarks/RESULTS.md, "Prints").
    from painterly.plan import StepCost

    cfg = StyleConfig(size=4096, max_memory="6GB")
    plan = RunPlan.build(cfg, 4096, 2725)
    factors = plan.memory(cfg).step_factors()
    assert factors[0] == 1.0 and factors[-1] > 1.5  # the coarse scales whole, the print in blocks
    cost = StepCost(overhead=0.01, per_mp=2.0, precision="fp32", setup=0.0)
    # A scale run whole above CHECKPOINT_PIXELS also recomputes two layers; a block's graph is smaller.
    scales = plan.memory(cfg).scales
    whole = [cost.step_seconds(cfg, w, h) * (1 if s.block else recompute_factor(cfg.last_layer, w * h))
             for ((w, h), _), s in zip(plan.scales, scales)]  # fmt: skip
    assert scales[-1].block and scales[-1].size[0] * scales[-1].size[1] > CHECKPOINT_PIXELS  # blocks: no recompute
    assert plan.step_costs(cfg, cost) == pytest.approx([t * k for t, k in zip(whole, factors)])
    total = plan.estimate(cfg, cost)  # each scale's steps and its targets (one step of it), no setup here
    assert total == pytest.approx(sum((n + 1) * t * k for (_, n), t, k in zip(plan.scales, whole, factors)))
    assert total > 1.3 * sum(n * t for (_, n), t in zip(plan.scales, whole))
    assert plan.remaining(cfg, cost, 0, 0.0) == pytest.approx(total)  # before any step: the estimate


def test_the_time_counts_the_layers_recomputed_above_the_checkpoint_size():
    # Above CHECKPOINT_PIXELS the VGG forward runs conv1_2 and conv2_2 a second time during
    # backward (vgg.py), and a 2048 px step cost more per pixel than the cost line fitted at small
    # sizes said: the 2048 px scale of the default said 83 s for a run of 101 s.
    cfg = StyleConfig(size=2048, precision="fp32", max_memory="16GB")
    plan = RunPlan.build(cfg, 2048, 1365)
    assert plan.memory(cfg).step_factors() == (1.0, 1.0, 1.0)  # every scale whole
    cost = StepCost(overhead=0.0, per_mp=1.0, precision="fp32", setup=0.0)
    pixels = [w * h for (w, h), _ in plan.scales]
    assert pixels[1] <= CHECKPOINT_PIXELS < pixels[2]
    factor = recompute_factor("relu5_1", pixels[2])
    assert 1.09 < factor < 1.11  # conv1_2 and conv2_2 forward again: a tenth of a step's convolutions
    assert plan.step_costs(cfg, cost) == pytest.approx([pixels[0] / 1e6, pixels[1] / 1e6, factor * pixels[2] / 1e6])
    assert recompute_factor("relu5_1", CHECKPOINT_PIXELS) == 1.0
    assert recompute_factor("relu1_1", pixels[2]) == 1.0  # a network that ends before pool1 recomputes nothing


def test_the_time_left_keeps_the_block_plan_it_started_with(monkeypatch):
    # Without --max-memory the budget is a share of the RAM free now; the time left is asked at
    # every progress write, and must not jump when other programs take or give back memory
    # while the run keeps the blocks it started with.
    from painterly import plan as pl

    pl._scale_factors.cache_clear()
    cfg = StyleConfig(size=4096)
    run = RunPlan.build(cfg, 4096, 2725)
    cost = pl.StepCost(overhead=0.01, per_mp=2.0, precision="fp32", setup=0.0)
    monkeypatch.setattr(pl, "default_budget", lambda: 64 * 10**9)
    roomy = run.remaining(cfg, cost, 10, 30.0)
    monkeypatch.setattr(pl, "default_budget", lambda: 6 * 10**9)
    assert run.remaining(cfg, cost, 10, 30.0) == roomy
    pl._scale_factors.cache_clear()  # a new run plans afresh: in 6 GB the print runs in blocks
    assert run.remaining(cfg, cost, 10, 30.0) > 1.2 * roomy


def test_a_block_scale_after_a_whole_one_is_planned_with_what_the_whole_one_leaves():
    # Measured: a 1024 px whole scale leaves ~477 MiB mapped through the 2048 px block scale after
    # it (benchmarks/RESULTS.md, "Prints"); the plan counts it where the run has such a scale.
    from painterly.plan import ScaleMemory, predict_peak, whole_before

    cfg = StyleConfig(precision="bf16")
    wh = (2048, 1362)
    alone = predict_peak(cfg, wh, 3, 688)
    after = predict_peak(cfg, wh, 3, 688, whole_before([ScaleMemory((1024, 681), 6, 0, 1, 0)]))
    assert 400 * 2**20 < after - alone < 700 * 2**20
    assert whole_before([ScaleMemory((1024, 681), 6, 512, 4, 0)]) == 0  # blocks leave nothing counted
    assert predict_peak(cfg, wh, 3, 0, 10**6) == predict_peak(cfg, wh, 3)  # a whole scale reuses it
    cfg2 = StyleConfig(size=2048, max_memory="4GB", precision="bf16")
    mem = RunPlan.build(cfg2, 451, 300).memory(cfg2)
    last = mem.scales[-1]
    assert mem.scales[-2].block == 0 and last.block
    counted = predict_peak(cfg2, last.size, last.steps, last.block, whole_before(mem.scales[:-1]))
    assert last.peak == counted > predict_peak(cfg2, last.size, last.steps, last.block)


def test_content_below_512_px_also_matches_a_shallower_layer_and_nothing_changes_from_512_up():
    from painterly.config import CLASSIC, CONTENT_FULL_SIZE
    from painterly.plan import content_weights, shallower_layer

    d = StyleConfig()
    assert CONTENT_FULL_SIZE == 512
    for size in (512, 513, 768, 1024, 4096):  # the default's objective at 512 px and up is today's
        assert content_weights(d.replace(size=size)) == {"relu4_2": 1.0}
    assert content_weights(d.replace(size=256)) == {"relu4_2": 1.0, "relu3_2": 1.0}
    assert content_weights(d.replace(size=100)) == {"relu4_2": 1.0, "relu3_2": 1.0}
    assert content_weights(d.replace(size=362))["relu3_2"] == pytest.approx(0.5, abs=0.01)  # log2(512/362)
    between = [content_weights(d.replace(size=s))["relu3_2"] for s in (500, 450, 384, 300)]
    assert between == sorted(between) and 0 < between[0] < 0.05  # grows smoothly from 0 at 512 px
    weighted = d.replace(size=256, content_weight=2.0, content_fine=0.5)
    assert content_weights(weighted) == {"relu4_2": 2.0, "relu3_2": 1.0}
    assert content_weights(d.replace(size=256, content_fine=0.0)) == {"relu4_2": 1.0}
    # a layer already matched is not doubled; one with no shallower twin adds nothing
    assert content_weights(d.replace(size=256, content_layers=("relu3_2", "relu4_2"))) == {
        "relu3_2": 1.0, "relu4_2": 1.0, "relu2_2": 1.0}  # fmt: skip
    assert content_weights(d.replace(size=256, content_layers=("relu1_2",))) == {"relu1_2": 1.0}
    assert shallower_layer("relu3_4") is None and shallower_layer("pool4") == "pool3"
    # the classic recipe reads its own layers at every size
    assert content_weights(CLASSIC.replace(size=256)) == dict.fromkeys(CLASSIC.content_layers, 1.0)


def test_a_whole_scale_that_would_crowd_out_the_print_runs_in_blocks_instead():
    # A square 8192 px print under 16 GB: with 2048 px run whole, what that scale leaves behind
    # (AFTER_WHOLE_BYTES) no longer lets the 8192 px scale fit even in the smallest blocks; with
    # 2048 px in blocks too, it fits. The plan takes the slower steps rather than refusing.
    from painterly.plan import _memory_plan

    cfg = StyleConfig(size=8192, max_memory="16GB", precision="bf16")
    run = RunPlan.build(cfg, 512, 512)
    with pytest.raises(PlanError):
        _memory_plan(cfg, run.scales, 16 * 10**9, 10**12)  # every scale that fits whole, whole
    mem = run.memory(cfg)
    assert mem.peak <= 16 * 10**9
    assert [s.block == 0 for s in mem.scales] == [True, True, False, False, False]  # 512 and 1024 whole
    roomy = RunPlan.build(cfg, 512, 512).memory(cfg, 64 * 10**9)
    assert [s.block for s in roomy.scales][:3] == [0, 0, 0]  # with room, whole as before
