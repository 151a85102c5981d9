"""benchmarks.pairs: choosing pairs and the two reach rules (no runs: pure functions)."""

from __future__ import annotations

from pathlib import Path

import pytest

pairs = pytest.importorskip("benchmarks.pairs")

PAIRS = [(Path(f"content_{c}.jpg"), Path(f"style_{s}.jpg")) for c in ("a", "b") for s in ("x", "y")]
BASE = {"scores": {"style": 0.99, "content": 0.40, "style2": 0.50}, "cpu": 100.0, "wall": 50.0}


def _snap(step, style, content, style2):
    return {"step": step, "cpu": step * 2.0, "wall": step * 1.0, "style": style, "content": content, "style2": style2}


def test_select_pairs_by_index_and_name():
    assert pairs.select_pairs("", PAIRS) == PAIRS
    assert pairs.select_pairs("1,b__x", PAIRS) == [PAIRS[1], PAIRS[2]]
    assert pairs.select_pairs("y,1", PAIRS) == [PAIRS[1], PAIRS[3]]  # no duplicates, order of first mention
    with pytest.raises(ValueError, match="no pair matches"):
        pairs.select_pairs("zebra", PAIRS)


def test_reach_by_the_style_score_and_by_both_opinions():
    traj = [_snap(5, 0.995, 0.45, 0.60), _snap(10, 0.995, 0.39, 0.45), _snap(15, 0.980, 0.50, 0.40),
            _snap(20, 0.992, 0.38, 0.49)]  # fmt: skip
    r = pairs.reach(traj, BASE)
    assert r["magenta"]["step"] == 5 and r["magenta"]["cpu_ratio"] == pytest.approx(0.1)
    assert r["both"]["step"] == 10  # SSIM 0.39 is within the 0.02 tolerance; style2 0.45 <= 0.50
    assert r["both"]["wall_ratio"] == pytest.approx(0.2)
    never = pairs.reach([_snap(5, 0.995, 0.45, 0.60)], BASE)
    assert never["magenta"]["step"] == 5 and never["both"] is None


def test_at_cpu_takes_the_last_snapshot_within_the_budget():
    traj = [_snap(5, 0.9, 0.5, 0.6), _snap(10, 0.95, 0.4, 0.5)]
    assert pairs.at_cpu(traj, 19.0)["step"] == 5
    assert pairs.at_cpu(traj, 20.0)["step"] == 10
    assert pairs.at_cpu(traj, 1.0) is None


def test_old_default_names_every_field():
    """old-default must stay the 2026-11-29 default when the preset changes: a field added to
    StyleConfig has to be added to OLD_DEFAULT with the value that reproduces the old runs."""
    from painterly.config import StyleConfig, fields

    set_by_harness = {"size", "preview_every", "threads", "device", "weights"}
    assert set(pairs.OLD_DEFAULT) == {f.name for f in fields()} - set_by_harness
    old = StyleConfig.from_dict(pairs.OLD_DEFAULT)
    assert old.steps == 80 and old.init == "preview" and old.style_weight == 5e-3


def test_a_saved_run_is_reused_only_when_its_settings_are_the_same():
    """A field added to StyleConfig after a run was saved, at its default, keeps the run; any other
    difference (a changed value, a new field away from its default, a field gone) runs it again."""
    from painterly.config import StyleConfig

    now = StyleConfig(size=64).to_dict()
    saved = {k: v for k, v in now.items() if k != "block_size"}  # saved before block_size existed
    assert pairs.same_settings(saved, now)
    assert pairs.same_settings(now, now)
    assert not pairs.same_settings(saved, {**now, "block_size": 128})
    assert not pairs.same_settings({**saved, "steps": 7}, now)
    assert not pairs.same_settings({**now, "gone": 1}, now)
    # a field whose default changes pictures (content_fine below 512 px): a run saved before it
    # existed is a run without it, not a run of the new default
    before = {k: v for k, v in now.items() if k != "content_fine"}
    assert not pairs.same_settings(before, now)
    assert pairs.same_settings(before, {**now, "content_fine": 0.0})
    at512 = StyleConfig(size=512).to_dict()  # where it changes nothing, the saved run stands
    assert pairs.same_settings({k: v for k, v in at512.items() if k != "content_fine"}, at512)


def test_a_run_continued_at_its_last_scale_is_its_own_run(monkeypatch):
    """The "final_steps" of benchmarks.pairs (the run continued at its last scale, issue 16's
    study): the coarse scales keep their share of ``steps``, the last one runs final_steps; a
    saved run without it is not reused."""
    from painterly import plan
    from painterly.config import StyleConfig

    worker = pytest.importorskip("benchmarks.worker")
    cfg = StyleConfig(size=64, scales=2, steps=6)
    shared = plan.RunPlan.build(cfg, 64, 48).scales
    monkeypatch.setattr(plan, "scale_plan", plan.scale_plan)  # the patch below is undone after the test
    worker._continue_last_scale(11)
    continued = plan.RunPlan.build(cfg, 64, 48).scales
    assert [n for _, n in shared] == [4, 2]
    assert continued == (shared[0], (shared[1][0], 11))
    now = cfg.to_dict()
    assert not pairs.same_settings(now, {**now, "final_steps": 11})
