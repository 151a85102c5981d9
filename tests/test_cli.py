"""The `painterly` command end to end on tiny images written to tmp_path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from painterly import __version__
from painterly.cli import CliError, build_config, check_output, loss_log_path, main, make_parser, snapshot_path
from painterly.config import PRESETS, StyleConfig, fields, preset
from painterly.images import fit_size
from painterly.plan import RunPlan, StepCost
from test_images import png_header  # the same hand-made decompression bomb

# One thread: the machine running the tests is shared, and two threads fighting other
# processes for two cores are several times slower than one.
FAST = ["--threads", "1", "--scales", "1", "--steps", "4", "--size", "40"]


@pytest.fixture
def files(tmp_path: Path, content_img: Image.Image, style_img: Image.Image) -> dict[str, Path]:
    content, style = tmp_path / "content.png", tmp_path / "style.jpg"
    content_img.save(content)
    style_img.save(style)
    return {"content": content, "style": style, "out": tmp_path / "out.png"}


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def assert_one_line_error(rc: int, err: str) -> None:
    assert rc != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("painterly: error: ")


def test_version(capsys):
    rc, out, _ = run(capsys, "--version")
    assert rc == 0 and out.strip() == f"painterly {__version__}"


def test_no_command_is_a_usage_error(capsys):
    rc, _, err = run(capsys)
    assert_one_line_error(rc, err)
    assert rc == 2 and "stylize" in err


# --- flags generated from StyleConfig -------------------------------------------------------


def _parse(*argv: str):
    return make_parser().parse_args(["stylize", "c.png", "s.png", "-o", "o.png", *argv])


def test_every_config_field_has_a_flag_with_its_help():
    stylize = next(a for a in make_parser()._subparsers._actions if a.dest == "command").choices["stylize"]
    by_dest = {a.dest: a for a in stylize._actions}
    for f in fields():
        action = by_dest[f.name]
        assert "--" + f.name.replace("_", "-") in action.option_strings
        assert f.metadata["help"].replace("%", "%%") in action.help
        if "choices" in f.metadata and f.name not in ("content_layers", "style_layers"):
            assert tuple(action.choices) == tuple(f.metadata["choices"])
    assert "--size" in by_dest["size"].option_strings and "--steps" in by_dest["steps"].option_strings
    assert {"--clamp", "--no-clamp"} <= set(by_dest["clamp"].option_strings)


def test_only_given_flags_override_the_preset():
    cfg = build_config(_parse("--preset", "draft", "--steps", "7"))
    assert cfg == preset("draft", steps=7, preview_every=0)  # the CLI asks for preview images only for snapshots
    assert build_config(_parse()) == PRESETS["default"].replace(preview_every=0)


def test_flag_kinds_parse_to_config_types():
    cfg = build_config(
        _parse(
            "--content-layers",
            "conv4_2",
            "--style-layers",
            "relu1_1",
            "relu2_1",
            "--style-layer-weights",
            "0.25",
            "0.75",
            "--no-clamp",
            "--optimizer",
            "adam",
            "--tv-weight",
            "1e-3",
            "--size",
            "64",
        )
    )
    assert cfg.content_layers == ("conv4_2",) and cfg.style_layers == ("relu1_1", "relu2_1")
    assert cfg.style_layer_weights == (0.25, 0.75)
    assert cfg.clamp is False and cfg.optimizer == "adam" and cfg.tv_weight == 1e-3 and cfg.size == 64
    assert build_config(_parse("--preset", "classic", "--clamp")).clamp is True


def test_classic_with_save_every_100_is_the_original_recipe():
    # The recipe saved an image and printed the loss every 100 of its 1000 steps.
    args = _parse("--preset", "classic", "--save-every", "100")
    cfg = build_config(args)
    assert cfg == PRESETS["classic"] and cfg.steps == 1000 and cfg.preview_every == 100
    assert [s for s in range(1, cfg.steps + 1) if s % args.save_every == 0] == list(range(100, 1001, 100))
    assert snapshot_path(Path("out.png"), 100) == Path("out_000100.png")
    assert loss_log_path(Path("a/out.jpg")) == Path("a/out.loss.tsv")


def test_check_output_refuses_before_running(tmp_path):
    assert check_output(str(tmp_path / "a.webp")) == tmp_path / "a.webp"
    for bad in ("a.gif", "noext", "missing/a.png"):
        with pytest.raises(CliError, match="unsupported|does not exist"):
            check_output(str(tmp_path / bad))


# --- real runs ------------------------------------------------------------------------------


def test_stylize_writes_an_image_of_the_right_size(capsys, files, content_img):
    rc, out, err = run(capsys, "stylize", files["content"], files["style"], "-o", files["out"], *FAST)
    assert rc == 0, err
    assert out == ""  # stdout is for --json only
    img = Image.open(files["out"])
    assert img.format == "PNG" and img.size == fit_size(*content_img.size, 40)
    assert "step 4/4" in err and "ETA" in err and "wrote" in err  # compact progress when not a TTY
    assert [p.name for p in files["out"].parent.iterdir() if p.name.startswith(".")] == []  # no temp files


def test_stylize_json_summary(capsys, files):
    out_jpg = files["out"].with_suffix(".jpg")
    rc, out, err = run(capsys, "stylize", files["content"], files["style"], "-o", out_jpg, *FAST, "--json", "-q")
    assert rc == 0 and err == ""
    summary = json.loads(out)
    assert summary["output"] == str(out_jpg) and summary["steps"] == 4 and summary["stopped_early"] is False
    assert summary["size"] == list(Image.open(out_jpg).size) and Image.open(out_jpg).format == "JPEG"
    assert set(summary["losses"]) == {"content", "style"} and summary["loss"] > 0 and summary["seconds"] > 0
    assert summary["config"]["size"] == 40 and summary["config"]["steps"] == 4 and summary["preset"] == "default"
    assert summary["config"]["precision"] == "auto" and summary["precision"] in ("fp32", "bf16")  # what auto chose


def test_precision_flag_reaches_the_run(capsys, files):
    rc, out, err = run(capsys, "stylize", files["content"], files["style"], "-o", files["out"], *FAST,
                       "--precision", "fp32", "--json", "-q")  # fmt: skip
    assert rc == 0, err
    assert json.loads(out)["precision"] == "fp32"
    rc, _, err = run(
        capsys, "stylize", files["content"], files["style"], "-o", files["out"], *FAST, "--precision", "fp8"
    )
    assert rc == 2 and "fp8" in err


def test_save_every_writes_snapshots_and_a_loss_log(capsys, files):
    out = files["out"].with_suffix(".webp")
    rc, _, err = run(
        capsys,
        "stylize",
        files["content"],
        files["style"],
        "-o",
        out,
        *FAST,
        "--save-every",
        "2",
        "--preset",
        "classic",
    )
    assert rc == 0, err
    snaps = sorted(p.name for p in out.parent.glob("out_*.webp"))
    assert snaps == ["out_000002.webp", "out_000004.webp"]
    assert Image.open(out.parent / snaps[0]).size == Image.open(out).size
    rows = loss_log_path(out).read_text().splitlines()
    assert rows[0].split("\t") == ["step", "scale", "loss", "content", "style", "tv", "elapsed"]
    assert [r.split("\t")[0] for r in rows[1:]] == ["2", "4"]
    losses = [float(r.split("\t")[2]) for r in rows[1:]]
    assert all(np.isfinite(losses)) and losses[1] < losses[0]  # the classic recipe's Adam lowers the loss
    assert "step 2/4  loss" in err and "saved out_000002.webp" in err  # the loss is printed, too


def test_init_image_is_the_start(capsys, files, tmp_path, content_img):
    red = tmp_path / "red.png"
    Image.new("RGB", content_img.size, (200, 30, 40)).save(red)
    # Adam with lr 0 leaves the start image as it is: the output is the init image.
    rc, _, err = run(
        capsys,
        "stylize",
        files["content"],
        files["style"],
        "-o",
        files["out"],
        *FAST,
        "--size",
        "48",
        "--optimizer",
        "adam",
        "--lr",
        "0",
        "--init-image",
        red,
    )
    assert rc == 0, err
    a = np.asarray(Image.open(files["out"]), dtype=int)
    assert np.abs(a - [200, 30, 40]).max() <= 1


def test_presets_lists_each_with_what_it_sets(capsys):
    rc, out, _ = run(capsys, "presets")
    assert rc == 0
    for name in PRESETS:
        assert f"\n{name} " in "\n" + out
    assert "--lr 0.01" in out and "--optimizer adam" in out and "--no-clamp" in out and "--steps 1000" in out
    rc, out, _ = run(capsys, "presets", "--json")
    data = json.loads(out)
    assert set(data) == set(PRESETS)
    assert data["classic"]["sets"]["steps"] == 1000 and data["classic"]["config"]["lr"] == 0.01
    assert data["default"]["sets"] == {} and data["classic"]["help"]


# --- every bad input: one line, non-zero, nothing written -------------------------------------


def _bad_files(tmp: Path) -> dict[str, Path]:
    made = {
        "text.png": b"this is not an image\n",
        "empty.png": b"",
        "bomb.png": png_header(9000, 8000),
        "huge.png": png_header(30000, 30000),
    }
    img = Image.new("RGB", (64, 64), (10, 200, 30))
    for name, fmt in (("cut.png", "PNG"), ("cut.jpg", "JPEG")):
        path = tmp / name
        img.save(path, fmt)
        data = path.read_bytes()
        made[name] = data[: len(data) // 2]
    out = {}
    for name, data in made.items():
        (tmp / name).write_bytes(data)
        out[name] = tmp / name
    (tmp / "code.pth").write_bytes(b"not a state dict")
    out["code.pth"] = tmp / "code.pth"
    return out


BAD = {
    "missing content": (["stylize", "{tmp}/nope.png", "{style}", "-o", "{out}"], "no such file"),
    "missing style": (["stylize", "{content}", "{tmp}/nope.jpg", "-o", "{out}"], "no such file"),
    "non-image": (["stylize", "{tmp}/text.png", "{style}", "-o", "{out}"], "not an image"),
    "zero bytes": (["stylize", "{content}", "{tmp}/empty.png", "-o", "{out}"], "empty"),
    "truncated png": (["stylize", "{tmp}/cut.png", "{style}", "-o", "{out}"], "truncated"),
    "truncated jpeg": (["stylize", "{content}", "{tmp}/cut.jpg", "-o", "{out}"], "truncated"),
    "over the pixel cap": (["stylize", "{tmp}/bomb.png", "{style}", "-o", "{out}"], "megapixels"),
    "decompression bomb": (["stylize", "{tmp}/huge.png", "{style}", "-o", "{out}"], "too large"),
    "bad output type": (["stylize", "{content}", "{style}", "-o", "{tmp}/out.gif"], "unsupported output"),
    "missing output folder": (["stylize", "{content}", "{style}", "-o", "{tmp}/no/out.png"], "does not exist"),
    "output is a folder": (["stylize", "{content}", "{style}", "-o", "{tmp}/dir.png"], "is a folder"),
    "output is the content": (["stylize", "{content}", "{style}", "-o", "{content}"], "also an input"),
    "preview over the style": (["preview", "{content}", "{style}", "-o", "{style}"], "also an input"),
    "no output": (["stylize", "{content}", "{style}"], "required"),
    "unknown preset": (["stylize", "{content}", "{style}", "-o", "{out}", "--preset", "fast"], "invalid choice"),
    "value too small": (
        ["stylize", "{content}", "{style}", "-o", "{out}", "--size", "8"],
        "--size must be at least 16",
    ),
    "not a number": (["stylize", "{content}", "{style}", "-o", "{out}", "--steps", "ten"], "invalid int"),
    "negative weight": (["stylize", "{content}", "{style}", "-o", "{out}", "--style-weight", "-1"], "at least 0"),
    "unknown layer": (
        ["stylize", "{content}", "{style}", "-o", "{out}", "--content-layers", "conv9_1"],
        "--content-layers: unknown VGG19 layer(s) conv9_1",
    ),
    "layer weights": (
        ["stylize", "{content}", "{style}", "-o", "{out}", "--style-layer-weights", "1"],
        "--style-layer-weights has 1 values",
    ),
    "blend count": (["stylize", "{content}", "{style}", "-o", "{out}", "--style-blend", "1", "2"], "2 weights for 1"),
    "init without image": (["stylize", "{content}", "{style}", "-o", "{out}", "--init", "image"], "--init-image"),
    "init-image conflict": (
        ["stylize", "{content}", "{style}", "-o", "{out}", "--init", "noise", "--init-image", "{content}"],
        "--init image",
    ),
    "bad init image": (
        ["stylize", "{content}", "{style}", "-o", "{out}", "--init-image", "{tmp}/text.png"],
        "start image",
    ),
    "save-every": (["stylize", "{content}", "{style}", "-o", "{out}", "--save-every", "-5"], "--save-every"),
    "missing weights": (
        ["stylize", "{content}", "{style}", "-o", "{out}", "--weights", "{tmp}/w.pth", *FAST],
        "does not exist",
    ),
    "bad weights": (
        ["stylize", "{content}", "{style}", "-o", "{out}", "--weights", "{tmp}/code.pth", *FAST],
        "state dict",
    ),
    "unknown command": (["paint", "{content}"], "invalid choice"),
    "unknown flag": (["presets", "--colour"], "unrecognized"),
    "preview bad output": (["preview", "{content}", "{style}", "-o", "{tmp}/out.bmp"], "unsupported output"),
    "preview non-image": (["preview", "{tmp}/text.png", "{style}", "-o", "{out}"], "not an image"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_nonzero(capsys, files, tmp_path, case):
    _bad_files(tmp_path)
    (tmp_path / "dir.png").mkdir()
    argv, expected = BAD[case]
    subst = {"tmp": tmp_path, "content": files["content"], "style": files["style"], "out": files["out"]}
    rc, out, err = run(capsys, *(a.format(**subst) for a in argv))
    assert_one_line_error(rc, err)
    assert expected in err, err
    assert out == ""
    assert not files["out"].exists()
    assert Image.open(files["content"]).size == (48, 32) and Image.open(files["style"]).size == (40, 40)


# --- other commands (the engines behind them are tested in their own files) ---------------------


def test_app_and_worker_pass_their_options(capsys, monkeypatch, tmp_path):
    calls = {}
    app = types.ModuleType("painterly.app")
    app.launch = lambda **kw: calls.setdefault("launch", kw) and 0  # type: ignore[attr-defined]
    jobs = types.ModuleType("painterly.jobs")
    jobs.run_worker = lambda data_dir=None, **kw: calls.setdefault("worker", {"data_dir": data_dir, **kw}) and 0  # type: ignore[attr-defined]  # noqa: E501
    monkeypatch.setitem(sys.modules, "painterly.app", app)
    monkeypatch.setitem(sys.modules, "painterly.jobs", jobs)
    assert run(capsys, "app", "--port", "9000", "--workers", "2", "--data-dir", tmp_path)[0] == 0
    assert calls["launch"] == {
        "host": "127.0.0.1",
        "port": 9000,
        "workers": 2,
        "data_dir": str(tmp_path),
        "executor": "local",
    }
    assert run(capsys, "worker", "--data-dir", tmp_path, "--once")[0] == 0
    assert calls["worker"]["data_dir"] == str(tmp_path) and calls["worker"]["once"] is True
    assert calls["worker"]["stop"].is_set() is False
    assert calls["worker"]["threads"] == 0 and calls["worker"]["executor"] == "local"


def test_worker_once_on_a_real_empty_queue(capsys, tmp_path):
    pytest.importorskip("painterly.jobs")
    rc, _, err = run(capsys, "worker", "--data-dir", tmp_path / "store", "--once")
    assert rc == 0 and "after 0 job(s)" in err


def test_missing_optional_part_is_one_line(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "painterly.app", None)  # as if the studio were not installed
    rc, _, err = run(capsys, "app")
    assert_one_line_error(rc, err)
    assert "studio is not available" in err


# --- real processes ---------------------------------------------------------------------------


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_cli_module_and_preview_command_do_not_import_torch(files):
    code = (
        "import sys; from painterly.cli import main; assert 'torch' not in sys.modules, 'cli imports torch'\n"
        "import importlib.util\n"
        "if importlib.util.find_spec('painterly.preview'):\n"
        f"    rc = main(['preview', {str(files['content'])!r}, {str(files['style'])!r}, '-o', {str(files['out'])!r}, '--size', '32', '-q'])\n"  # noqa: E501
        "    assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules, 'preview imports torch'\n"
        "print('ok')"
    )
    proc = _python(code)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_python_dash_m_exits_with_the_status():
    proc = subprocess.run([sys.executable, "-m", "painterly", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == f"painterly {__version__}"
    proc = subprocess.run([sys.executable, "-m", "painterly", "stylize"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.skipif(os.name != "posix", reason="needs SIGINT")
def test_ctrl_c_saves_the_best_image_so_far_and_exits_130(files, content_img):
    out = files["out"]
    cmd = [
        sys.executable,
        "-m",
        "painterly",
        "stylize",
        str(files["content"]),
        str(files["style"]),
        "-o",
        str(out),
        "--threads",
        "1",
        "--scales",
        "1",
        "--size",
        "32",
        "--steps",
        "100000",
        "--save-every",
        "1",
        "--json",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = loss_log_path(out)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= 3:  # header + two steps done
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "best image so far" in stderr
    summary = json.loads(stdout)
    assert summary["stopped_early"] is True and 2 <= summary["steps"] < 100000
    assert Image.open(out).size == fit_size(*content_img.size, 32)


# --- the progress display ------------------------------------------------------------------------


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty, self.text = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass


def _progress(step: int, steps: int = 4, elapsed: float = 2.0):
    from painterly.stylize import Progress

    scale = 1 if step <= 2 else 2
    size = (10, 10) if scale == 1 else (20, 20)
    return Progress(
        step=step,
        steps=steps,
        scale=scale,
        scales=2,
        size=size,
        loss=1234.5,
        losses={"content": 1.0, "style": 1233.5},
        elapsed=elapsed,
    )


def test_eta_weighs_steps_by_their_pixels():
    from painterly.reporter import ProgressReporter

    # A step costs its pixels here (1 s at 10x10, 4 s at 20x20), and the run keeps that pace;
    # each scale's targets cost one step of it (plan.TARGET_STEPS).
    cost = StepCost(overhead=0.0, per_mp=1e4, precision="fp32", setup=0.0)
    rep = ProgressReporter(_Stream(False), RunPlan((((10, 10), 2), ((20, 20), 2))), StyleConfig(precision="fp32"), cost)
    # After the cheap scale (1 s of targets, two 1 s steps) the 20x20 one remains: 4 s of
    # targets and two 4 s steps.
    assert rep.eta(_progress(2, elapsed=3.0)) == pytest.approx(12.0)
    assert rep.eta(_progress(2, elapsed=5.0)) > 12.0  # a slower machine than the model: later
    assert rep.eta(_progress(4, elapsed=9.0)) == 0.0


def test_live_bar_on_a_terminal_and_lines_elsewhere():
    from painterly.reporter import ProgressReporter

    plan = RunPlan((((10, 10), 2), ((20, 20), 2)))
    tty = _Stream(True)
    rep = ProgressReporter(tty, plan, StyleConfig())
    rep.update(_progress(1))
    rep.update(_progress(4), note="step 4/4  loss 1234.5")
    rep.close()
    assert tty.text.startswith("\rstep 1/4 [") and "]  25%" in tty.text and "\n" in tty.text
    assert "step 4/4  loss 1234.5\n" in tty.text and tty.text.endswith("\n")
    log = _Stream(False)
    rep = ProgressReporter(log, plan, StyleConfig())
    for s in range(1, 5):
        rep.update(_progress(s))
    assert "\r" not in log.text and len(log.text.splitlines()) == 4  # every 10 %: here every step
    assert "scale 2/2 20x20 fp32  loss 1234  0:02 elapsed  ETA" in log.text  # with the precision in use
    quiet = _Stream(False)
    ProgressReporter(quiet, plan, StyleConfig(), quiet=True).update(_progress(4))
    assert quiet.text == ""


def test_missing_device_is_one_line(capsys, files):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    rc, _, err = run(capsys, "stylize", files["content"], files["style"], "-o", files["out"], *FAST, "--device", "cuda")
    assert_one_line_error(rc, err)
    assert "no CUDA GPU" in err and not files["out"].exists()


def test_print_output_16_bit_tiff_with_the_photos_profile_and_dpi(files, tmp_path, capsys, one_torch_thread):
    import tifffile
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo = tmp_path / "photo.jpg"
    Image.open(files["content"]).save(photo, icc_profile=icc, dpi=(300, 300))
    out = tmp_path / "print.tif"
    code, _, err = run(capsys, "stylize", photo, files["style"], "-o", out, "--size", "48", "--steps", "2",
                       "--init", "content", "--depth", "16", "-q")  # fmt: skip
    assert code == 0, err
    with tifffile.TiffFile(out) as tif:
        page = tif.pages[0]
        a = page.asarray()
        assert a.dtype == np.uint16 and a.shape == (32, 48, 3)
        assert len(np.unique(a)) > 256  # more levels than 8 bits hold
        assert page.tags["InterColorProfile"].value == icc and page.tags["XResolution"].value == (300, 1)
    code, _, err = run(capsys, "stylize", photo, files["style"], "-o", tmp_path / "x.jpg", "--depth", "16")
    assert code == 2 and "--depth 16 needs a .png or .tif output" in err
