"""painterly.batch.on_ray on a real local Ray cluster (``ray start --head``, two CPUs).

Run in CI (Ray comes with the test extra; PAINTERLY_REQUIRE_RAY makes a missing Ray a failure).
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from painterly.batch import BatchError, check_reachable, connect, plan_batch, ray_executor, run_batch
from painterly.cli import main
from painterly.config import preset

pytestmark = pytest.mark.slow

CFG = preset("default", size=40, steps=6, scales=1, threads=1, style_loss="gram")  # cheap at tiny sizes


@pytest.fixture
def inputs(tmp_path: Path, content_img: Image.Image, style_img: Image.Image) -> dict[str, Path]:
    photos, paintings = tmp_path / "photos", tmp_path / "paintings"
    photos.mkdir()
    paintings.mkdir()
    for k in range(3):
        content_img.rotate(90 * k, expand=True).save(photos / f"photo{k}.png")
    style_img.save(paintings / "painting.png")
    (paintings / "readme.txt").write_text("not a painting")
    return {"photos": photos, "paintings": paintings, "out": tmp_path / "out"}


@pytest.fixture
def ray_session(ray_head):
    """A driver connected to the head for one test, disconnected after it."""
    import ray

    assert connect(ray_head)
    yield ray_head
    ray.shutdown()


def test_the_command_runs_a_batch_as_ray_tasks(ray_head, inputs, capsys):
    argv = ["batch", "-c", str(inputs["photos"]), "-s", str(inputs["paintings"]), "-o", str(inputs["out"])]
    argv += ["--ray", ray_head, "--json", "--size", "40", "--steps", "4", "--scales", "1", "--threads", "1"]
    argv += ["--style-loss", "gram"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["executor"] == "ray" and not summary["failed"] and len(summary["made"]) == 3
    assert "readme.txt" in summary["skipped"][0]["path"]
    assert all(not m["by"].endswith(f":{os.getpid()}") for m in summary["made"])  # made in Ray workers
    for m in summary["made"]:
        with Image.open(m["output"]) as img:
            assert img.size in ((40, 27), (27, 40))
    assert "Ray tasks" in err


def test_a_killed_ray_worker_s_picture_is_rerun_and_every_picture_written_once(ray_session, inputs):
    plan = plan_batch(inputs["out"], CFG.replace(steps=30), contents=[inputs["photos"]], styles=[inputs["paintings"]])
    killed: list[str] = []
    finished: Counter[str] = Counter()

    def on_progress(p):
        if p.finished is not None:
            finished[p.finished.item.name] += 1

    def kill_the_first_worker(items, stop):
        for event in ray_executor(retries=3)(items, stop):
            if isinstance(event, tuple) and not killed:
                where = event[3]  # "host:pid" of the Ray worker running that picture, mid-run
                killed.append(where)
                os.kill(int(where.rsplit(":", 1)[1]), signal.SIGKILL)
            yield event

    result = run_batch(plan, executor=kill_the_first_worker, on_progress=on_progress)
    assert killed and not result.failed and len(result.made) == 3
    assert set(finished.values()) == {1} and len(finished) == 3  # every picture, exactly once
    assert killed[0] not in {f.where for f in result.made}  # the killed worker made none of them
    for f in result.made:
        meta = json.loads(Path(str(f.item.output) + ".json").read_text())
        assert meta["status"] == "done" and meta["made_by"] == f.where
    assert not plan_batch(
        inputs["out"], CFG.replace(steps=30), contents=[inputs["photos"]], styles=[inputs["paintings"]]
    ).todo


def test_a_picture_that_cannot_be_made_fails_without_retries(ray_session, inputs, tmp_path):
    plan = plan_batch(inputs["out"], CFG, contents=[inputs["photos"] / "photo0.png"], styles=[inputs["paintings"]])
    (item,) = plan.todo
    # Corrupt the photo after planning: the task's load_image refuses it, and Ray does not retry.
    item.content.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    result = run_batch(plan, executor=ray_executor(retries=3))
    (failed,) = result.failed
    assert "content image" in failed.error and "damaged" in failed.error


def test_unreachable_addresses_are_one_line_errors_in_seconds():
    for address, why in [("127.0.0.1:1", "cannot reach"), ("nonsense", "use HOST:PORT")]:
        with pytest.raises(BatchError, match=why):
            check_reachable(address, timeout=2)


def test_a_studio_job_runs_through_painterly_worker_executor_ray(
    ray_head, tmp_path, content_img, style_img, monkeypatch
):
    import ray

    from painterly.images import encode_image
    from painterly.jobs import JobStore

    store = JobStore(tmp_path / "jobs")
    job_id = store.submit(encode_image(content_img), [encode_image(style_img)], CFG)
    monkeypatch.setenv("RAY_ADDRESS", ray_head)  # ray_engine's ray.init() joins it
    try:
        assert main(["worker", "--data-dir", str(store.data_dir), "--once", "--executor", "ray", "--threads", "1"]) == 0
    finally:
        ray.shutdown()
    job = store.get(job_id)
    assert job.status == "done" and job.step == CFG.steps, job.error
    with Image.open(store.result_path(job_id)) as result:
        assert result.size == (job.width, job.height)


def test_a_cluster_that_asks_for_a_token_we_lack_is_one_actionable_line(ray_head, inputs, tmp_path):
    """The head keeps token authentication; a driver without the token (none in its environment,
    none in its home folder) is refused in one line that says how to give it, and writes nothing."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_TOKEN"}
    env.update(HOME=str(tmp_path), RAY_AUTH_MODE="token", PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    argv = ["batch", "-c", str(inputs["photos"]), "-s", str(inputs["paintings"]), "-o", str(inputs["out"])]
    argv += ["--ray", ray_head, "--size", "40", "--steps", "2", "--scales", "1"]
    cmd = [sys.executable, "-m", "painterly", *argv]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "error" in line]  # Ray logs its own INFO lines
    assert len(errors) == 1 and errors[0].startswith(f"painterly: error: cannot join the Ray cluster at {ray_head}")
    assert "asks for a token" in errors[0] and "RAY_AUTH_TOKEN" in errors[0], proc.stderr
    assert not inputs["out"].exists() or not any(inputs["out"].iterdir())
