"""benchmarks.precision: when a run counts as finished (issue 16's definition; pure, no runs)."""

from __future__ import annotations

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
