"""engine.alignment.shipped: every chapter-4 section ships a result (with the command that made it) that reads back as
the records the page draws, exactly like a run of the learner's own."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from engine.alignment import report, shipped
from engine.core.precomputed import load_precomputed, path_of


def _strict_json(name: str) -> dict:
    """The file as strict JSON: a NaN or Infinity (which json.dumps writes by default) fails here."""

    def refuse(token):
        raise ValueError(f"{name}: {token} is not JSON")

    return json.loads(path_of(name).read_text(encoding="utf-8"), parse_constant=refuse)


@pytest.mark.parametrize("section", shipped.SECTIONS)
def test_every_section_is_shipped_with_the_command_that_made_it(section):
    name = shipped.name(section)
    pre = load_precomputed(name)
    assert pre is not None, f"run: python -m engine align-precompute --only {section}"
    assert pre.command == f"python -m engine align-precompute --only {section}"
    assert _strict_json(name)["data"] == pre.data
    assert pre.data["rows"], "a shipped section draws its curves from these rows"
    assert "\ufffd" not in json.dumps(pre.data, ensure_ascii=False)  # no text cut inside a character


def test_shipped_sft_and_reward_read_back():
    sft = shipped.sft_shown(load_precomputed("ch04_sft").data)
    assert 0 < sft.trainable < sft.total and sft.percent == pytest.approx(100 * sft.trainable / sft.total, abs=1e-4)
    assert [a.instruction for a in sft.answers] == ["대한민국의 수도는 어디인가요?", "What is the capital of France?"]
    rm = shipped.reward_shown(load_precomputed("ch04_reward").data)
    assert 0 <= rm.train_accuracy <= 1 and rm.test_pairs == 6  # 20% of the 30 shipped pairs are held out
    assert set(rm.best_of_n) == set(shipped.BON_PROMPTS)
    for rows in rm.best_of_n.values():
        ranked = report.ranked_answers(rows)
        assert [a.rank for a in ranked] == list(range(1, shipped.BON_N + 1)) and ranked[0].best
        assert [a.reward for a in ranked] == sorted((a.reward for a in ranked), reverse=True)
    assert [p.n for p in rm.toy_best_of_n] == [1, 2, 4, 8, 16, 32]


def test_shipped_runs_read_back():
    race = shipped.runs_shown(load_precomputed("ch04_race").data)
    assert [(r.run, r.status, r.steps) for r in race.table] == [("ppo", "finished", 60), ("dpo", "finished", 60)]
    assert race.reference is not None and race.reference.pairs > 0
    assert [name for name, _ in race.examples] == ["ppo", "dpo"]
    hacking = shipped.runs_shown(load_precomputed("ch04_hacking").data)
    assert [r.run for r in hacking.table] == ["ppo β=0", "ppo β=0.5"] and hacking.verdict is not None
    points = load_precomputed("ch04_beta").data["points"]
    assert sorted({p["beta"] for p in points}) == list(shipped.SWEEP["betas"])
    assert all(p["kind"] == "eval" for p in points)


@pytest.mark.slow
def test_a_run_and_its_shipped_json_draw_the_same():
    res = report.race_runs(("ppo", "dpo"), 3, 0, 0.3)
    data = json.loads(json.dumps(shipped.runs_data(res, reference=True), allow_nan=False))
    own, back = shipped.runs_view(res, reference=True), shipped.runs_shown(data)
    assert back.table == own.table and back.examples == own.examples  # the table is rounded to 3 decimals already
    for shown, run in ((back.verdict, own.verdict), (back.reference, own.reference)):  # JSON keeps 6 decimals
        assert asdict(shown) == pytest.approx(asdict(run), abs=1e-6)
    assert len(data["rows"]) == sum(len(log.rows) for log in res.logs.values())
