"""painterly.batch: planning (names, CSV rows, resume), writing once, stopping, and the command."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from PIL import Image

from painterly.batch import BatchError, Cancelled, is_done, plan_batch, run_batch, split_cores
from painterly.batch.plan import output_name, safe_name, sidecar_path
from painterly.batch.run import Failed, Rendered, _write, local_executor
from painterly.cli import main
from painterly.config import preset

CFG = preset("default", size=40, steps=4, scales=1, threads=1, style_loss="gram")  # cheap at tiny sizes


@pytest.fixture
def folders(tmp_path: Path, content_img: Image.Image, style_img: Image.Image) -> dict[str, Path]:
    photos, paintings = tmp_path / "photos", tmp_path / "paintings"
    photos.mkdir()
    paintings.mkdir()
    content_img.save(photos / "cat photo.png")
    content_img.rotate(90, expand=True).save(photos / "dog.jpg")
    (photos / "notes.txt").write_text("not a picture")
    (photos / ".DS_Store").write_bytes(b"\0")
    style_img.save(paintings / "starry night.png")
    return {"photos": photos, "paintings": paintings, "out": tmp_path / "out", "root": tmp_path}


def plan(folders: dict[str, Path], **kw):
    kw.setdefault("contents", [folders["photos"]])
    kw.setdefault("styles", [folders["paintings"]])
    return plan_batch(folders["out"], kw.pop("config", CFG), **kw)


def fake(items, stop, *, fail=(), dup=True):
    """An executor without torch: a grey picture per item, ticks first; some fail; answers twice."""
    for i, item in enumerate(items):
        yield (i, 2, 4, "here:1")
        if i in fail:
            yield Failed(i, "boom")
            continue
        data = _png(item.run.final_size)
        yield Rendered(i, data, 4, 0.5, "here:1")
        if dup:
            yield Rendered(i, _png((7, 7)), 4, 0.5, "there:2")  # a retried task's second answer
        if stop.is_set():
            return


def _png(size: tuple[int, int]) -> bytes:
    from painterly.images import encode_image

    return encode_image(Image.new("RGB", size, (120, 120, 120)))


# --- planning ---------------------------------------------------------------------------------


def test_every_photo_in_every_style_named_from_the_template_and_non_images_listed(folders):
    p = plan(folders)
    assert sorted(i.name for i in p.todo) == ["cat_photo__starry_night.png", "dog__starry_night.png"]
    assert [(Path(s.path).name, "not an image" in s.reason) for s in p.skipped] == [("notes.txt", True)]
    assert folders["out"].is_dir() and not p.done
    cat = next(i for i in p.todo if i.name.startswith("cat"))
    assert cat.run.final_size == (40, 27) and cat.config == CFG


def test_names_are_made_safe_and_the_template_is_checked(folders):
    assert safe_name("../a b/ c?.") == "a_b_c"
    assert output_name("{row}-{content}_{style}.jpg", Path("x y.png"), [Path("a.png"), Path("b c.jpg")], 3) == (
        "3-x_y_a+b_c.jpg"
    )
    for template, why in [
        ("{content}/{style}.png", "a file name"),
        ("{content}_{size}.png", "unknown field"),
        ("{content}.gif", ".png, .jpg or .webp"),
    ]:
        with pytest.raises(BatchError, match=why):
            plan(folders, template=template)
    with pytest.raises(BatchError, match="would be called x.png"):
        plan(folders, template="x.png")


def test_output_folder_refused_before_any_work(folders):
    (folders["root"] / "afile").write_text("")
    with pytest.raises(BatchError, match="is a file"):
        plan_batch(folders["root"] / "afile", CFG, contents=[folders["photos"]], styles=[folders["paintings"]])
    with pytest.raises(BatchError, match="does not exist"):
        plan_batch(folders["root"] / "no" / "out", CFG, contents=[folders["photos"]], styles=[folders["paintings"]])
    with pytest.raises(BatchError, match="a folder of their own"):
        plan_batch(folders["photos"], CFG, contents=[folders["photos"]], styles=[folders["paintings"]])
    with pytest.raises(BatchError, match="no such file"):
        plan(folders, contents=[folders["root"] / "missing"])
    with pytest.raises(BatchError, match="matches no file"):
        plan(folders, contents=[str(folders["photos"] / "*.tif")])


def test_csv_rows_carry_their_own_options_read_as_the_flags_are(folders):
    csv = folders["root"] / "pairs.csv"
    csv.write_text(
        "content,style,steps,clamp,style_layers,output,preset\n"
        "photos/cat photo.png,paintings/starry night.png,7,false,relu1_1 relu2_1,,\n"
        "photos/dog.jpg,paintings/starry night.png;paintings/starry night.png,,,,two.webp,\n"
        "photos/notes.txt,paintings/starry night.png,,,,,\n"
        "photos/dog.jpg,paintings/starry night.png,,,,classic.png,classic\n"
    )
    p = plan_batch(folders["out"], CFG, pairs_csv=csv)
    first, second, third = p.todo
    assert first.name == "cat_photo__starry_night.png" and first.row == 1
    assert first.config == CFG.replace(steps=7, clamp=False, style_layers=("relu1_1", "relu2_1"))
    assert second.name == "two.webp" and len(second.styles) == 2 and second.config == CFG
    assert third.config.optimizer == "adam" and third.config.steps == 1000  # the row's preset
    assert [Path(s.path).name for s in p.skipped] == ["notes.txt"]


@pytest.mark.parametrize(
    "header,row,why",
    [
        ("content,style,brush", "photos/dog.jpg,paintings/starry night.png,3", "unknown column"),
        ("content,style,steps", "photos/dog.jpg,paintings/starry night.png,0", "row 1: steps must be at least 1"),
        ("content,style,steps", "photos/dog.jpg,paintings/starry night.png,many", "row 1: .*invalid int"),
        ("content,style,clamp", "photos/dog.jpg,paintings/starry night.png,maybe", "clamp must be true or false"),
        ("content,steps", "photos/dog.jpg,3", "needs the columns content and style"),
    ],
)
def test_a_bad_csv_is_refused_naming_the_row(folders, header, row, why):
    csv = folders["root"] / "pairs.csv"
    csv.write_text(f"{header}\n{row}\n")
    with pytest.raises(BatchError, match=why):
        plan_batch(folders["out"], CFG, pairs_csv=csv)


# --- resuming -------------------------------------------------------------------------------


def test_a_rerun_skips_what_was_made_with_the_same_settings_and_redoes_the_rest(folders):
    first = plan(folders)
    cat, dog = sorted(first.todo, key=lambda i: i.name)
    _write(cat, Rendered(0, _png((40, 27)), 4, 1.0, "here:1"))
    _write(dog, Rendered(1, _png((27, 40)), 4, 1.0, "here:1"))
    assert is_done(cat) and json.loads(sidecar_path(cat.output).read_text())["made_by"] == "here:1"
    again = plan(folders)
    assert {i.name for i in again.done} == {cat.name, dog.name} and not again.todo
    # The same settings at other threads (a runtime option) still count as done ...
    assert len(plan(folders, config=CFG.replace(threads=2)).done) == 2
    # ... other settings do not; nor a damaged output, a missing sidecar, or a failed one.
    assert len(plan(folders, config=CFG.replace(steps=5)).todo) == 2
    cat.output.write_bytes(cat.output.read_bytes()[:20])  # half-written by something else
    sidecar_path(dog.output).unlink()  # died between the picture and its sidecar
    assert {i.name for i in plan(folders).todo} == {cat.name, dog.name}
    assert len(plan(folders, redo=True).todo) == 2


# --- running --------------------------------------------------------------------------------


def test_each_picture_is_written_once_and_failures_recorded(folders):
    p = plan(folders)
    seen = []
    result = run_batch(p, executor=lambda items, stop: fake(items, stop, fail={1}), on_progress=seen.append)
    (made,), (failed,) = result.made, result.failed
    assert made.ok and failed.error == "boom" and not result.stopped
    with Image.open(made.item.output) as img:
        assert img.size == made.item.run.final_size  # the first answer, not the retried one's
    assert json.loads(sidecar_path(failed.item.output).read_text())["status"] == "failed"
    assert not failed.item.output.exists()
    assert [s.finished is not None for s in seen].count(True) == 2
    assert seen[-1].fraction == 1.0 and seen[-1].made == 1 and seen[-1].failed == 1
    assert [i.name for i in plan(folders).todo] == [failed.item.name]  # a rerun redoes only that one


def test_the_callback_stops_the_batch_keeping_what_is_done(folders):
    p = plan(folders)

    def on_progress(s):
        if s.finished is not None:
            raise Cancelled

    result = run_batch(p, executor=lambda items, stop: fake(items, stop, dup=False), on_progress=on_progress)
    assert result.stopped and len(result.made) == 1
    assert len(plan(folders).done) == 1 and len(plan(folders).todo) == 1


def test_cores_are_split_between_processes():
    from painterly.batch import run

    n = run.cores()
    assert split_cores(0, 0) == (n // run.PICTURE_THREADS or 1, min(run.PICTURE_THREADS, n))
    assert split_cores(1, 0) == (1, n)
    assert split_cores(0, n) == (1, n)
    assert split_cores(3, 2) == (3, 2)


@pytest.mark.slow
def test_real_pictures_in_two_processes_and_stopping_mid_run(folders):
    p = plan(folders)
    result = run_batch(p, executor=local_executor(2))
    assert len(result.made) == 2 and not result.failed, result.failed
    assert all(not f.where.endswith(f":{os.getpid()}") for f in result.made)  # made in the worker processes
    for f in result.made:
        with Image.open(f.item.output) as img:
            assert img.size == f.item.run.final_size
    # In this process (one worker): a stop set during the run leaves the picture unwritten.
    long = plan(folders, config=CFG.replace(steps=500), redo=True)
    started = threading.Event()

    def on_progress(s):
        started.set()
        raise Cancelled

    result = run_batch(long, executor=local_executor(1), on_progress=on_progress)
    assert started.is_set() and result.stopped and not result.made
    assert len(plan(folders, config=CFG.replace(steps=500)).todo) == 2


# --- the command ------------------------------------------------------------------------------


def test_the_command_makes_a_batch_then_skips_it(folders, capsys):
    argv = ["batch", "-c", str(folders["photos"] / "dog.jpg"), str(folders["photos"] / "notes.txt")]
    argv += ["-s", str(folders["paintings"]), "-o", str(folders["out"]), "--workers", "1", "--json"]
    argv += ["--size", "40", "--steps", "3", "--scales", "1", "--threads", "1", "--style-loss", "gram"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert [Path(m["output"]).name for m in summary["made"]] == ["dog__starry_night.png"]
    assert summary["skipped"][0]["path"].endswith("notes.txt") and summary["executor"] == "local"
    assert "skipped" in err and "[1/1] dog__starry_night.png" in err and "made 1 picture" in err
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert not again["made"] and len(again["already_made"]) == 1


def test_the_command_refuses_bad_input_in_one_line(folders, capsys):
    base = ["batch", "-c", str(folders["photos"]), "-s", str(folders["paintings"])]
    (folders["root"] / "afile").write_text("")
    for argv, why in [
        ([*base, "-o", str(folders["root"] / "afile")], "is a file"),
        ([*base, "-o", str(folders["out"]), "--ray", "127.0.0.1:1"], "cannot reach the Ray cluster at 127.0.0.1:1"),
        ([*base, "-o", str(folders["out"]), "--steps", "0"], "--steps must be at least 1"),
        (["batch", "-o", str(folders["out"])], "nothing to do"),
    ]:
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc in (1, 2) and len(err.strip().splitlines()) == 1 and why in err, err
    assert not any(folders["out"].glob("*.png"))


def test_one_cancelled_stops_pictures_videos_and_batches_and_needs_no_torch():
    """A callback raising painterly.Cancelled stops any run: one class, in a module that a front
    end which only watches runs (the batch parent) imports without loading torch."""
    import subprocess
    import sys

    import painterly
    import painterly.batch
    import painterly.stylize

    assert painterly.Cancelled is painterly.batch.Cancelled is painterly.stylize.Cancelled
    code = "import sys, painterly.progress, painterly.batch; assert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
