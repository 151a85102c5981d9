"""Eight people at once: the real studio under 8 real Chromium browser contexts (issue 15).

    flock /work/cpu.lock python -m benchmarks.load [--browsers 8] [--before main] [--steps 10]

For each variant (``before``: the studio of git revision ``--before``, extracted to a temporary
folder; ``after``: this checkout), one after the other in one run: start ``painterly app`` (one
worker, a fresh data folder, localhost), then 8 browser contexts of one headless Chromium
(/usr/bin/chromium) at once each open the page, upload the smallest photo and painting of
../shared/images, set the size to 256 px and the steps to ``--steps``, press Paint it, and reload
their job's page every few seconds until it is finished. Measured per browser: the first render
(page load until the form's "Paint it" button is on screen), each reload of the job page (until
its heading is on screen), the estimate the page showed and the job's actual time (submit to
finished, from the job store); and in the server's log, the "fragment ... does not exist anymore"
lines. From each browser's websocket frames (its BackMsgs): the timed reruns it sent (fragment
timers), its requests for upload URLs, and the websockets it opened before submitting (more than
one: it reconnected while choosing). Writes results/load.json and prints a table for RESULTS.md.
Bounded: 8 browsers at most, localhost only, each variant stopped after ``--limit`` seconds
(a browser still waiting then is closed and counted as stuck, so no variant runs longer than
another); the pictures finished by then are "finished", and with ``--drain S`` the studio stays
up to S seconds more, the browsers gone, to time the rest of the queue. The CPU of every process
on the machine is sampled twice a second (``Sampler``), by kind (browsers, web server, workers,
anything else), for each phase: the first renders, choosing, watching, draining.

``--render 1,2,4,8`` measures only page loads, with no one submitting: for each count, that many
browsers at once open the form, a finished picture's page, and (once a long picture runs)
the running picture's page, each loaded then reloaded; first with the worker idle, then with a
picture painting. It says what a render costs as the browsers multiply, and what the worker adds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "images"
RESULTS = REPO / "benchmarks" / "results" / "load.json"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
PHOTO, PAINTING = "content_chelsea.jpg", "style_great_wave.jpg"  # the smallest of the set
SIZE = "256"
HEADING = re.compile(r"^(Painting|Waiting for its turn|Your picture|A picture)")


class Sampler:
    """CPU seconds used by every process on the machine, by kind, sampled every ``period`` s
    (psutil; a process that exits between two looks loses its last half second)."""

    KINDS = ("browsers", "server", "worker", "calibration", "other")

    def __init__(self, period: float = 0.5) -> None:
        import threading

        self.period, self.marks = period, {"start": time.monotonic()}
        self.totals = {k: 0.0 for k in self.KINDS}
        self.timeline: list[tuple[float, dict[str, float]]] = []
        self._seen: dict[int, float] = {}
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def kind(cmd: str, name: str) -> str | None:
        if "painterly.app.serve" in cmd:
            return "server"
        if "painterly" in cmd and " worker" in cmd:
            return "worker"
        if "painterly.calibrate" in cmd:
            return "calibration"
        if "chrom" in name or "chromium" in cmd or "playwright" in cmd:
            return "browsers"
        return "other"

    def _look(self) -> None:
        import psutil

        for proc in psutil.process_iter(["pid", "name", "cmdline", "cpu_times"]):
            info = proc.info
            if info["cpu_times"] is None or info["pid"] == os.getpid():
                continue
            t = info["cpu_times"].user + info["cpu_times"].system
            cmd = " ".join(info["cmdline"] or [])
            kind = self.kind(cmd, info["name"] or "")
            before = self._seen.get(info["pid"])
            self._seen[info["pid"]] = t
            if before is not None and kind:
                self.totals[kind] += max(0.0, t - before)
        self.timeline.append((time.monotonic(), dict(self.totals)))

    def _run(self) -> None:
        while not self._halt.wait(self.period):
            with contextlib.suppress(Exception):
                self._look()

    def __enter__(self) -> Sampler:
        self._look()  # every process's starting point
        self.timeline.clear()
        self.totals = {k: 0.0 for k in self.KINDS}
        self.timeline.append((time.monotonic(), dict(self.totals)))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()
        self._thread.join()
        self._look()

    def mark(self, name: str, at: float | None = None) -> None:
        self.marks[name] = time.monotonic() if at is None else at

    def between(self, t0: float, t1: float) -> dict[str, float]:
        """CPU s by kind between two monotonic times, and "cores": all kinds / wall seconds."""

        def at(t: float) -> dict[str, float]:
            best = self.timeline[0][1]
            for when, totals in self.timeline:
                if when > t:
                    break
                best = totals
            return best

        a, b = at(t0), at(t1)
        out = {k: round(b[k] - a[k], 1) for k in self.KINDS}
        out["seconds"] = round(t1 - t0, 1)
        out["cores"] = round(sum(b[k] - a[k] for k in self.KINDS) / max(t1 - t0, 1e-9), 2)
        return out

    def phases(self, names: list[str]) -> dict[str, dict[str, float]]:
        """CPU by kind in each phase between consecutive marks (``names`` in order)."""
        have = [n for n in names if n in self.marks]
        return {f"{a}->{b}": self.between(self.marks[a], self.marks[b]) for a, b in zip(have, have[1:])}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _source(rev: str, into: Path) -> Path:
    """``rev``'s src/ folder, extracted (git archive) into ``into``; returns the src path."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def _start_studio(src: Path, data: Path, port: int, log: Path, extra: str = "") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(src), "PAINTERLY_HOME": str(data)}
    code = f"from painterly.app import launch; raise SystemExit(launch(port={port}, data_dir={str(data)!r}{extra}))"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                _wait_calibration(proc, deadline)
                return proc
        except OSError:
            time.sleep(0.3)
        if proc.poll() is not None:
            break
    raise RuntimeError("the studio did not start:\n" + log.read_text())


def _wait_calibration(proc: subprocess.Popen, deadline: float) -> None:
    """Wait for the step timing the server starts (``painterly.calibrate``) to end, as it has
    before people arrive at a studio started earlier: under 8 browsers it ran on through the
    whole run (35 CPU s of the two cores, RESULTS "Where the time goes")."""
    import psutil

    time.sleep(1.0)  # the server starts it as it starts
    while time.monotonic() < deadline:
        with contextlib.suppress(psutil.Error):
            kids = psutil.Process(proc.pid).children(recursive=True)
            if not any("painterly.calibrate" in " ".join(k.cmdline()) for k in kids):
                return
        time.sleep(0.5)


async def _settle(page: Any) -> None:
    await page.wait_for_timeout(600)
    await page.wait_for_function(
        "() => !document.querySelector("
        "'[data-testid=stStatusWidgetRunningIcon], [data-testid=stStatusWidgetRunningManIcon]')",
        timeout=120_000,
    )


async def _set_slider(page: Any, label: str, target: str) -> None:
    await page.wait_for_function(
        'l => document.querySelectorAll(`input[type=range][aria-label="${l}"]`).length === 1',
        arg=label,
        timeout=120_000,
    )
    knob = page.locator(f'input[type=range][aria-label="{label}"]')
    await knob.focus()
    for _ in range(60):
        if await knob.get_attribute("aria-valuetext") == target:
            return
        await page.keyboard.press("ArrowLeft")
        await page.wait_for_timeout(150)
    raise RuntimeError(f"{label}: could not reach {target}")


async def _person(i: int, browser: Any, url: str, steps: int, limit: float, t_start: float) -> dict[str, Any]:
    """One person: open, choose, submit, reload the job page until it is finished."""
    out: dict[str, Any] = {"browser": i, "reloads": [], "stage": "open"}
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await ctx.new_page()
    frames = {"timed_reruns": 0, "url_requests": 0, "sockets": 0}
    page.on("websocket", lambda ws: _watch(ws, frames))
    page.set_default_timeout(180_000)
    try:
        t0 = time.perf_counter()
        await page.goto(url)
        await page.get_by_role("button", name="Paint it").wait_for()
        out["first_render"] = time.perf_counter() - t0
        out["rendered_at"], out["stage"] = time.monotonic(), "choose"
        uploads = page.locator('[data-testid="stFileUploader"] input[type=file]')
        await uploads.nth(0).set_input_files(str(SHARED / PHOTO))
        await page.get_by_text(re.compile(r"^\d+ × \d+ px$")).first.wait_for()
        await _settle(page)
        await uploads.nth(1).set_input_files([str(SHARED / PAINTING)])
        await _settle(page)
        await _set_slider(page, "Size (long side, pixels)", SIZE)
        await _settle(page)
        await _set_slider(page, "Steps", str(steps))
        # "About 7 s for a 256 × 170 px picture, 10 steps." (+ ": 2 pictures ahead of yours ..." since the queue counts)
        estimate = page.get_by_text(re.compile(rf"^About .* for a .* px picture, {steps} steps[.:]"))
        await estimate.wait_for()
        out["estimate_text"] = await estimate.inner_text()
        await _settle(page)
        out["sockets_before_submit"] = frames["sockets"]
        out["stage"] = "submit"
        await page.get_by_role("button", name="Paint it").click()
        await page.wait_for_url(re.compile(r"[?&]job=[A-Za-z0-9_-]{16,}"))
        out["submitted"], out["submitted_at"], out["stage"] = time.time(), time.monotonic(), "watch"
        out["job"] = re.search(r"job=([A-Za-z0-9_-]+)", page.url).group(1)  # type: ignore[union-attr]
        while time.monotonic() - t_start < limit:
            await page.wait_for_timeout(3000)
            t0 = time.perf_counter()
            await page.reload()
            heading = page.get_by_role("heading", name=HEADING)
            await heading.first.wait_for()
            out["reloads"].append(time.perf_counter() - t0)
            if await page.get_by_text(re.compile(r"^Finished: ")).count():
                break
        out["stage"] = "done"
    except Exception as e:  # noqa: BLE001 -- a person who got stuck is a result too
        out["error"] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
        with contextlib.suppress(Exception):  # what the page said when it got stuck
            out["page"] = (await page.locator("[data-testid=stMain]").inner_text(timeout=5000))[:600]
    finally:
        out.setdefault("sockets_before_submit", frames["sockets"])
        out.update(frames)
        await ctx.close()
    return out


def _watch(ws: Any, frames: dict[str, int]) -> None:
    """Count what this browser sends on ``ws``: timed reruns, requests for upload URLs."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    def sent(payload: Any) -> None:
        if not isinstance(payload, bytes):
            return
        with contextlib.suppress(Exception):
            msg = BackMsg.FromString(payload)
            kind = msg.WhichOneof("type")
            if kind == "rerun_script" and msg.rerun_script.is_auto_rerun:
                frames["timed_reruns"] += 1
            elif kind == "file_urls_request":
                frames["url_requests"] += 1

    frames["sockets"] += 1
    ws.on("framesent", sent)


def _seconds(text: str) -> float:
    """'About 1 min 05 s for a ...' -> 65."""
    m = re.match(r"^About (?:(\d+) h )?(?:(\d+) min ?)?(?:(\d+) s)?", text)
    h, mi, s = (int(g) if g else 0 for g in m.groups()) if m else (0, 0, 0)
    return h * 3600 + mi * 60 + s


async def _crowd(url: str, n: int, steps: int, limit: float) -> list[dict[str, Any]]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            t_start = time.monotonic()
            crowd = asyncio.gather(*(_person(i, browser, url, steps, limit, t_start) for i in range(n)))
            # A browser still waiting at the limit (a stuck "Paint it" waits up to 180 s) is
            # closed: every variant then runs equally long, and its queue has equal time (a
            # stuck browser once kept "before" up 95 s longer, and 6 of 8 finished against 1).
            done, _ = await asyncio.wait({asyncio.ensure_future(crowd)}, timeout=limit + 10)
            if not done:
                await browser.close()
            return list(await crowd)
        finally:
            with contextlib.suppress(Exception):
                await browser.close()


# "after-level": this checkout with its workers at the web server's priority (the launcher's nice off).
# "after-1thread": this checkout, its one worker started here with one torch thread (the studio's
# own worker takes the host's cores, 2 here, whatever else runs).
EXTRA = {"after-level": ", worker_nice=0", "after-1thread": ", workers=0"}
WORKER_ARGS = {"after-1thread": ["--threads", "1"]}


def _cpu_seconds(proc: subprocess.Popen) -> dict[str, float]:
    """CPU seconds used so far by the launcher's children: the web server and the workers."""
    import psutil

    out: dict[str, float] = {}
    for child in psutil.Process(proc.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            cmd = " ".join(child.cmdline())
            kind = "server" if "painterly.app.serve" in cmd else "worker" if " worker" in cmd else "other"
            t = child.cpu_times()
            out[kind] = out.get(kind, 0.0) + t.user + t.system + t.children_user + t.children_system
    return out


def _reaped_cpu() -> float:
    """CPU seconds of this process's children that have exited (Playwright's driver, and the
    Chromium it started and waited for)."""
    t = os.times()
    return t.children_user + t.children_system


def _unfinished(data: Path) -> int:
    with contextlib.closing(sqlite3.connect(data / "jobs.sqlite3")) as db:
        return int(db.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')").fetchone()[0])


def run_variant(
    name: str, src: Path, n: int, steps: int, limit: float, work: Path, drain: float = 0.0
) -> dict[str, Any]:
    data, log, port = work / f"{name}-data", work / f"{name}.log", _free_port()
    proc = _start_studio(src, data, port, log, EXTRA.get(name, ""))
    own_worker = None
    if name in WORKER_ARGS:
        env = {**os.environ, "PYTHONPATH": str(src), "PAINTERLY_HOME": str(data)}
        cmd = [sys.executable, "-m", "painterly", "worker", "--data-dir", str(data), *WORKER_ARGS[name]]
        own_worker = subprocess.Popen(cmd, env=env, stdout=open(log.with_suffix(".worker.log"), "w"),
                                      stderr=subprocess.STDOUT)  # fmt: skip
    try:
        cpu0, own0 = _cpu_seconds(proc), _reaped_cpu()
        with Sampler() as sampler:
            t0 = time.monotonic()
            people = asyncio.run(_crowd(f"http://127.0.0.1:{port}/", n, steps, limit))
            seconds = time.monotonic() - t0
            browsers_gone = time.time()
            sampler.mark("browsers_gone")
            cpu = {k: round(v - cpu0.get(k, 0.0), 1) for k, v in _cpu_seconds(proc).items()}
            cpu["browsers"] = round(_reaped_cpu() - own0, 1)  # Chromium and Playwright's driver, exited by now
            end = time.monotonic() + drain
            while time.monotonic() < end and _unfinished(data):
                time.sleep(1)
            sampler.mark("drained")
        for mark, key in (("rendered", "rendered_at"), ("submitted", "submitted_at")):
            if any(key in p for p in people):
                sampler.mark(mark, max(p[key] for p in people if key in p))
        phases = sampler.phases(["start", "rendered", "submitted", "browsers_gone", "drained"])
    finally:
        for child in (own_worker, proc):
            if child is None:
                continue
            child.send_signal(signal.SIGINT)
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
    db = sqlite3.connect(data / "jobs.sqlite3")
    for p in people:
        row = db.execute("SELECT status, created, started, finished, elapsed FROM jobs WHERE id = ?", (p.get("job"),))
        found = row.fetchone()
        if found:
            status, created, started, finished, elapsed = found
            watched = status == "done" and finished is not None and finished <= browsers_gone
            p.update(status=status, run_seconds=elapsed, actual=(finished - created) if finished else None)
            p.update(finished_watched=watched, finished_after_s=(finished - browsers_gone) if finished else None)
        if "estimate_text" in p:
            p["estimate"] = _seconds(p["estimate_text"])
    text = log.read_text()
    return {
        "variant": name,
        "people": people,
        "cpu_seconds": cpu,  # while the browsers ran: the web server's, the workers'
        "cpu_phases": phases,  # every process on the machine, by kind, phase by phase (Sampler)
        "seconds": round(seconds, 1),
        "drain": drain,
        "timed_reruns_per_s": round(sum(p.get("timed_reruns", 0) for p in people) / seconds, 2),
        "fragment_warnings": text.count("does not exist anymore"),
        # upload replies a starting run would have dropped (the stuck Paint it), kept (app/serve.py)
        "replies_kept": sum(int(m) for m in re.findall(r"kept (\d+) upload reply", text)),
        "tracebacks": text.count("Traceback"),
    }


async def _visitor(browser: Any, pages: list[tuple[str, str]]) -> dict[str, list[float]]:
    """One browser that only looks: each page loaded (a new context: a first visit), then reloaded."""
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await ctx.new_page()
    page.set_default_timeout(120_000)
    out: dict[str, list[float]] = {}
    try:
        for label, url in pages:
            for _ in ("load", "reload"):
                t0 = time.perf_counter()
                await (page.goto(url) if _ == "load" else page.reload())
                if label == "form":
                    await page.get_by_role("button", name="Paint it").wait_for()
                else:
                    await page.get_by_role("heading", name=HEADING).first.wait_for()
                out.setdefault(label, []).append(time.perf_counter() - t0)
    finally:
        await ctx.close()
    return out


async def _visitors(n: int, pages: list[tuple[str, str]]) -> list[dict[str, list[float]]]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            return list(await asyncio.gather(*(_visitor(browser, pages) for _ in range(n))))
        finally:
            await browser.close()


def _wait_job(data: Path, job: str, status: tuple[str, ...], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.closing(sqlite3.connect(data / "jobs.sqlite3")) as db:
            row = db.execute("SELECT status, step FROM jobs WHERE id = ?", (job,)).fetchone()
        if row and row[0] in status and (row[0] != "running" or (row[1] or 0) > 0):
            return
        time.sleep(0.5)
    raise RuntimeError(f"job {job} did not reach {status}")


def run_render(counts: list[int], work: Path) -> list[dict[str, Any]]:
    """Page loads only, no one submitting: ``counts`` browsers at once, the worker idle, then
    painting one long picture (see the module's docstring)."""
    sys.path.insert(0, str(REPO / "src"))
    from painterly.config import StyleConfig
    from painterly.jobs import JobStore

    data, log, port = work / "render-data", work / "render.log", _free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = _start_studio(REPO / "src", data, port, log)
    rows: list[dict[str, Any]] = []
    try:
        store = JobStore(data)
        photo, painting = (SHARED / PHOTO).read_bytes(), (SHARED / PAINTING).read_bytes()
        small = store.submit(photo, [painting], StyleConfig(size=int(SIZE), steps=10), owner="")
        _wait_job(data, small, ("done",))
        pages = [("form", url), ("finished job", f"{url}?job={small}")]
        with Sampler() as sampler:
            for when in ("worker idle", "a picture painting"):
                if when == "a picture painting":
                    long = store.submit(photo, [painting], StyleConfig(size=int(SIZE), steps=2000), owner="")
                    _wait_job(data, long, ("running",))
                    pages.append(("painting job", f"{url}?job={long}"))
                for n in counts:
                    time.sleep(3)
                    t0 = time.monotonic()
                    visits = asyncio.run(_visitors(n, pages))
                    cpu = sampler.between(t0, time.monotonic())
                    row: dict[str, Any] = {"when": when, "browsers": n, "cpu": cpu}
                    for label, _url in pages:
                        row[label] = {k: [v[label][i] for v in visits] for i, k in enumerate(("load", "reload"))}
                    rows.append(row)
                    print(render_table(rows[-1:]), file=sys.stderr, flush=True)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return rows


def render_table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| worker | browsers | form: load / reload, median (max) s | finished job's page: load / reload | "
        "painting job's page: load / reload | wall s | CPU s: browsers / server / worker / other | cores busy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = []
        for label in ("form", "finished job", "painting job"):
            if label not in r:
                cells.append("-")
                continue
            cells.append(
                " / ".join(f"{statistics.median(r[label][k]):.1f} ({max(r[label][k]):.1f})" for k in ("load", "reload"))
            )
        c = r["cpu"]
        cpu = " / ".join(f"{c[k]:.1f}" for k in ("browsers", "server", "worker", "other"))
        out.append(
            f"| {r['when']} | {r['browsers']} | {' | '.join(cells)} | {c['seconds']:.0f} | {cpu} | {c['cores']:.2f} |"
        )
    return "\n".join(out)


def _stats(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} / {max(values):.1f}"


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| variant | first render, median / max (s) | job-page reload, median / max (s) | reloads "
        "| estimate shown (s) | actual, submit to finished (s) | run alone (s) | finished | stuck "
        "| CPU s: server / workers / browsers | timed reruns / s | upload replies kept | fragment warnings |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ppl = r["people"]
        renders = [p["first_render"] for p in ppl if "first_render" in p]
        reloads = [x for p in ppl for x in p["reloads"]]
        est = [p["estimate"] for p in ppl if p.get("estimate")]
        actual = [p["actual"] for p in ppl if p.get("actual")]
        run = [p["run_seconds"] for p in ppl if p.get("run_seconds")]
        done = sum(1 for p in ppl if p.get("finished_watched"))  # by the limit, the browsers watching
        later = sum(1 for p in ppl if p.get("status") == "done" and not p.get("finished_watched"))
        done_text = f"{done}/{len(ppl)}" + (f" (+{later} after)" if later else "")
        est_text = f"{min(est):.0f}-{max(est):.0f}" if est else "-"
        act_text = f"{min(actual):.0f}-{max(actual):.0f}" if actual else "-"
        run_text = f"{min(run):.0f}-{max(run):.0f}" if run else "-"
        stuck = sum(1 for p in ppl if "error" in p)
        cpu = r.get("cpu_seconds", {})
        cpu_text = " / ".join(f"{cpu.get(k, 0):.0f}" for k in ("server", "worker", "browsers"))
        rows.append(
            f"| {r['variant']} | {_stats(renders)} | {_stats(reloads)} | {len(reloads)} | {est_text} | {act_text} "
            f"| {run_text} | {done_text} | {stuck} | {cpu_text} | {r.get('timed_reruns_per_s', '-')} "
            f"| {r.get('replies_kept', 0)} | {r['fragment_warnings']} |"
        )
    return "\n".join(rows)


def phase_table(results: list[dict[str, Any]]) -> str:
    """CPU seconds by kind of process in each phase of each variant (every process sampled)."""
    kinds = Sampler.KINDS
    rows = [
        "| variant | phase | wall s | " + " | ".join(f"CPU s {k}" for k in kinds) + " | cores busy |",
        "|---|---|---|" + "---|" * len(kinds) + "---|",
    ]
    for r in results:
        for phase, c in r.get("cpu_phases", {}).items():
            cells = " | ".join(f"{c[k]:.1f}" for k in kinds)
            rows.append(f"| {r['variant']} | {phase} | {c['seconds']:.0f} | {cells} | {c['cores']:.2f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n\n")[0])
    p.add_argument("--browsers", type=int, default=8, help="browser contexts at once (at most 8)")
    p.add_argument("--before", default="main", help="the git revision measured as 'before' ('' to skip)")
    p.add_argument("--variants", default="before,after", help="which to run, in this order")
    p.add_argument("--steps", type=int, default=10, help="steps of each picture (the page's smallest is 10)")
    p.add_argument("--limit", type=float, default=240.0, help="seconds each variant may run at most")
    p.add_argument("--drain", type=float, default=0.0, help="seconds the queue may run on after the browsers leave")
    p.add_argument("--render", default="", help="only page loads, for these browser counts (e.g. 1,2,4,8)")
    p.add_argument("--out", default=str(RESULTS), help="the results file")
    args = p.parse_args(argv)
    n = max(1, min(8, args.browsers))
    results: list[dict[str, Any]] = []
    render: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="painterly-load-") as tmp:
        work = Path(tmp)
        if args.render:
            render = run_render([max(1, min(8, int(c))) for c in args.render.split(",")], work)
        for name in [] if args.render else args.variants.split(","):
            src = _source(args.before, work / "before") if name == "before" else REPO / "src"  # after, after-*
            print(f"{name}: {n} browsers ...", file=sys.stderr, flush=True)
            results.append(run_variant(name, src, n, args.steps, args.limit, work, args.drain))
            print(table(results[-1:]), file=sys.stderr, flush=True)
    machine = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in machine.splitlines() if ln.startswith("Model name")), "?")
    record = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": model,
        "cores": os.cpu_count(),
        "browsers": n,
        "steps": args.steps,
        "size": int(SIZE),
        "before": args.before,
        "limit": args.limit,
        "results": results,
        "render": render,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(render_table(render) if render else table(results) + "\n\n" + phase_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
