"""benchmarks.precision: when a run counts as finished (issue 16's definition; pure, no runs)."""

from __future__ import annotations

import json

import pytest

precision = pytest.importorskip("benchmarks.precision")


def _snap(step, content, style=0.99, style2=0.2):
    return {"step": step, "style": style, "content": content, "style2": style2}


def test_finished_is_where_the_run_stays_within_the_tolerance_of_its_reference():
    # SSIM passes through the tolerance at step 20, leaves it at step 30 (the shake after a new
    # scale), and is back for good from step 40
    traj = [_snap(10, 0.50), _snap(20, 0.39), _snap(30, 0.43), _snap(40, 0.415), _snap(50, 0.40), _snap(60, 0.395)]
    ref = traj[-2]
    assert precision.finished_by(traj[1], ref)  # the first snapshot within ...
    assert precision.finished_at(traj, ref)["step"] == 40  # ... is not where it stays
    assert precision.finished_at(traj[:3], traj[0]) is traj[0]  # only up to the reference's step
    far = [_snap(10, 0.9), _snap(20, 0.1)]
    assert precision.finished_at(far, far[-1]) is far[-1]  # the reference itself, at least
    assert precision.finished_at(traj, _snap(60, 0.40, style2=0.9)) is None  # never within: none


def test_the_two_scale_run_is_read_against_step_300_in_all_and_reported(tmp_path, monkeypatch):
    # A saved run of `--scales 2 --steps 210` continued to 300 steps in all: settled from step 200,
    # so finished by its own end (step 210); the report's table says where and when.
    traj = [{**_snap(s, 0.60 - 0.001 * s), "wall": s / 5, "cpu": s / 3} for s in range(10, 310, 10)]
    for s in traj:
        if s["step"] >= 200:
            s["content"] = 0.30 + 0.0001 * (300 - s["step"])
    d = tmp_path / "pairs" / "512" / precision.TWO_SCALE / "a__b"
    d.mkdir(parents=True)
    (d / "run.json").write_text(
        json.dumps({"pair": "a__b", "settings": {"scales": 2, "steps": 210, "final_steps": 160}, "trajectory": traj})
    )
    monkeypatch.setattr(precision, "OUT", tmp_path)
    (row,) = precision.continued(precision.TWO_SCALE)
    assert row["steps"] == 210 and row["by_ref"] == {"step": 200, "wall": 40.0} and row["wall"] == 42.0
    md = precision.precision_md(
        {
            "machine": {"date": "d", "cpu": "c", "cores": 2, "torch": "t"},
            "flags": [],
            "auto": "bf16",
            "command": "x",
            "steps": [],
            "parity": [],
            "finished": [],
            "two_scale": [row],
        }  # fmt: skip
    )
    assert "| a__b | 200 | 40 | yes | 42 | 0.990 / 0.309 / 0.200 |" in md
