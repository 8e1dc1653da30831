"""engine.llmops.human_eval: the shipped pairs, labels per learner in a real SQLite file under tmp_path (bad input,
a corrupted file, many writers at once), and Cohen's / Fleiss' kappa checked against scikit-learn and statsmodels."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from engine.core import InputError, UserError
from engine.llmops import human_eval as he
from engine.rag.heldout import load_heldout, phrase_found

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pairs():
    return he.load_pairs()


@pytest.fixture
def store(tmp_path, pairs):
    s = he.LabelStore(tmp_path / "llmops" / "labels.sqlite", pairs)
    yield s
    s.close()


# -- the shipped items --------------------------------------------------------------------------------------------
def test_shipped_pairs(pairs):
    assert len(pairs) >= 50
    assert len({p.pair_id for p in pairs}) == len(pairs)
    header = [line for line in he.PAIRS_FILE.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    assert any("developers" in line for line in header)
    questions = {q.question: q for q in load_heldout()}
    for p in pairs:
        assert p.question in questions, p.pair_id
        assert p.reference in he.PAIRWISE_LABELS and p.design in he.DESIGNS, p.pair_id
        assert p.answer_a.strip() and p.answer_b.strip() and p.answer_a != p.answer_b, p.pair_id
        assert p.note, p.pair_id
        # the developers' label agrees with their per-answer verdicts
        if p.correct_a is not None and p.correct_b is not None and p.correct_a != p.correct_b:
            assert p.reference == ("A" if p.correct_a else "B"), p.pair_id
        # an answer marked correct states a gold phrase (the rule check of chapter 9)
        row = questions[p.question]
        for answer, ok in ((p.answer_a, p.correct_a), (p.answer_b, p.correct_b)):
            if ok:
                assert phrase_found(answer, row), (p.pair_id, answer)
    refs = [p.reference for p in pairs]
    assert refs.count("A") >= 10 and refs.count("B") >= 10  # the right answer is not always in one position
    designs = {p.design for p in pairs}
    assert {"correct_vs_wrong", "short_right_long_wrong", "long_right_short_wrong", "padded"} <= designs
    longer_right = [p for p in pairs if p.reference in "AB" and p.longer == p.reference]
    shorter_right = [p for p in pairs if p.reference in "AB" and p.longer not in (p.reference, "same")]
    assert len(longer_right) >= 10 and len(shorter_right) >= 10  # length does not predict the label
    assert len(he.likert_items(pairs)) == 2 * len(pairs)
    assert he.item_ids("likert", pairs)[:2] == [f"{pairs[0].pair_id}/A", f"{pairs[0].pair_id}/B"]


def test_bad_pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('# header\n{"pair_id": "x1", "question": "q", "answer_a": "a", "answer_b": "b"}\n', "utf-8")
    with pytest.raises(InputError) as err:
        he.load_pairs(path)
    assert err.value.code == "llmops.pairs.bad_line" and err.value.fmt["line"] == 2
    path.write_text("{not json\n", "utf-8")
    with pytest.raises(InputError) as err:
        he.load_pairs(path)
    assert err.value.fmt["line"] == 1


# -- the label store ----------------------------------------------------------------------------------------------
def test_labels_per_learner_latest_wins_history_kept(store, pairs):
    assert store.add_learner(" 김민지 ") == "김민지" and store.add_learner("김민지") == "김민지"
    store.add_learner("lee")
    assert store.learners() == ["김민지", "lee"]
    p0, p1 = pairs[0].pair_id, pairs[1].pair_id
    row = store.label("김민지", p0, "pairwise", "a")
    assert (row.learner, row.item_id, row.kind, row.label) == ("김민지", p0, "pairwise", "A")
    store.label("김민지", p0, "pairwise", "tie")  # changed their mind
    store.label("김민지", f"{p1}/B", "likert", 4)
    store.label("lee", p0, "pairwise", "B")
    latest = {(r.learner, r.item_id, r.kind): r.label for r in store.labels()}
    assert latest == {
        ("김민지", p0, "pairwise"): "tie",
        ("김민지", f"{p1}/B", "likert"): "4",
        ("lee", p0, "pairwise"): "B",
    }
    assert len(store.labels(history=True)) == 4
    assert [r.label for r in store.labels(kind="pairwise", learner="김민지", history=True)] == ["A", "tie"]
    assert store.unlabelled("김민지", "pairwise")[:2] == [p1, pairs[2].pair_id]
    assert len(store.unlabelled("lee", "likert")) == 2 * len(pairs)
    assert store.progress("김민지") == {
        "pairwise_done": 1,
        "likert_done": 1,
        "pairwise_total": len(pairs),
        "likert_total": 2 * len(pairs),
    }
    # the file is a plain SQLite database in WAL mode
    with sqlite3.connect(store.path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("SELECT COUNT(*) FROM labels").fetchone()[0] == 4


def test_default_path_is_under_the_cache(tmp_path, monkeypatch, pairs):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path / "cache"))
    # looking creates nothing: no file yet, and the agreement of nobody's labels says so
    assert not he.labels_exist()
    empty = he.agreement(kind="pairwise")
    assert empty.notes == ["llmops.labels.none_yet"] and empty.learners == [] and not he.labels_exist()
    assert not (tmp_path / "cache").exists()
    with he.LabelStore(pairs=pairs) as s:
        assert s.path == tmp_path / "cache" / "llmops" / "labels.sqlite" and s.path.exists()
    assert he.labels_exist() and he.labels_exist(tmp_path / "cache" / "llmops" / "labels.sqlite")
    from engine.llmops import check_learner, labels_exist, labels_path

    assert labels_path() == he.default_path() and labels_exist is he.labels_exist and check_learner(" kim ") == "kim"


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("pairwise", "C"),
        ("pairwise", ""),
        ("pairwise", 1),
        ("likert", 0),
        ("likert", 6),
        ("likert", "x"),
        ("likert", 2.5),
        ("likert", True),
        ("likert", None),
    ],
)
def test_label_out_of_range(store, pairs, kind, value):
    store.add_learner("kim")
    item = pairs[0].pair_id if kind == "pairwise" else f"{pairs[0].pair_id}/A"
    with pytest.raises(InputError) as err:
        store.label("kim", item, kind, value)
    assert err.value.code == "llmops.labels.bad_label"
    assert store.labels(history=True) == []


def test_unknown_learner_item_kind_nothing_written(store, pairs):
    store.add_learner("kim")
    with pytest.raises(InputError) as err:
        store.label("park", pairs[0].pair_id, "pairwise", "A")
    assert err.value.code == "llmops.labels.unknown_learner" and err.value.fmt == {"learner": "park"}
    with pytest.raises(InputError) as err:
        store.label("kim", "p999999", "pairwise", "A")
    assert err.value.code == "llmops.labels.unknown_item"
    with pytest.raises(InputError) as err:
        store.label("kim", pairs[0].pair_id, "likert", 3)  # a pair id is not a Likert item
    assert err.value.code == "llmops.labels.unknown_item"
    with pytest.raises(InputError) as err:
        store.label("kim", pairs[0].pair_id, "ranking", "A")
    assert err.value.code == "input.unknown_choice"
    for bad in ("", "a\nb", "x" * 41, None):
        with pytest.raises(InputError) as err:
            store.add_learner(bad)
        assert err.value.code == "llmops.labels.bad_learner"
    assert store.labels(history=True) == [] and store.learners() == ["kim"]


def test_corrupted_file_is_reported_and_left_untouched(tmp_path, pairs):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all" * 100)
    before = garbage.read_bytes()
    with pytest.raises(UserError) as err:
        he.LabelStore(garbage, pairs)
    assert err.value.code == "llmops.labels.corrupt" and str(garbage) in str(err.value)
    assert garbage.read_bytes() == before and not Path(f"{garbage}-wal").exists()

    # a real labels file whose pages were damaged: the header is fine, the b-tree is not
    damaged = tmp_path / "damaged.sqlite"
    with he.LabelStore(damaged, pairs) as s:
        s.add_learner("kim")
        for p in pairs[:40]:
            s.label("kim", p.pair_id, "pairwise", "A")
    with sqlite3.connect(damaged) as con:  # fold the WAL into the file, as a closed app leaves it
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(damaged.read_bytes())
    page = 4096
    data[page + 8 : page * 2] = b"\xff" * (page - 8)  # overwrite the body of page 2
    damaged.write_bytes(bytes(data))
    before = damaged.read_bytes()
    with pytest.raises(UserError) as err:
        he.LabelStore(damaged, pairs)
    assert err.value.code == "llmops.labels.corrupt"
    assert damaged.read_bytes() == before


def test_unwritable_place(tmp_path, pairs):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(UserError) as err:
        he.LabelStore(blocker / "llmops" / "labels.sqlite", pairs)
    assert err.value.code == "llmops.labels.unwritable" and blocker.read_text() == "not a folder"
    if os.geteuid() != 0:  # root may write a read-only file
        path = tmp_path / "ro.sqlite"
        he.LabelStore(path, pairs).close()
        path.chmod(0o444)
        with pytest.raises(UserError) as err, he.LabelStore(path, pairs) as s:
            s.add_learner("kim")
        assert err.value.code == "llmops.labels.unwritable"


def _writer(path: str, learner: str, items: list[str], out) -> None:
    try:
        pairs = he.load_pairs()
        with he.LabelStore(path, pairs) as s:
            s.add_learner(learner)
            for i, item in enumerate(items):
                s.label(learner, item, "pairwise", he.PAIRWISE_LABELS[i % 3])
        out.put(("ok", learner))
    except Exception as exc:  # reported to the parent, which fails the test
        out.put(("error", f"{learner}: {exc!r}"))


def test_many_writers_at_once_nothing_lost(tmp_path, pairs):
    """4 processes and 4 threads, each its own connection, 30 labels each, all at the same time."""
    path = str(tmp_path / "labels.sqlite")
    he.LabelStore(path, pairs).close()
    items = [p.pair_id for p in pairs[:30]]
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(path, f"proc{i}", items, out)) for i in range(4)]
    threads = [threading.Thread(target=_writer, args=(path, f"thread{i}", items, out)) for i in range(4)]
    for w in procs + threads:
        w.start()
    for w in procs + threads:
        w.join(timeout=600)
    results = [out.get(timeout=10) for _ in range(8)]
    assert all(status == "ok" for status, _ in results), results
    with he.LabelStore(path, pairs) as s:
        rows = s.labels(history=True)
        assert len(rows) == 8 * 30 and len(s.learners()) == 8
        assert len({r.row_id for r in rows}) == 240


# -- kappa --------------------------------------------------------------------------------------------------------
def _sk(a, b, labels, weights=None) -> float:
    return float(cohen_kappa_score(a, b, labels=labels, weights=weights))


@pytest.mark.parametrize("seed", range(6))
def test_cohen_equals_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 80))
    a = list(rng.choice(he.PAIRWISE_LABELS, n))
    b = [x if rng.random() < 0.6 else str(rng.choice(he.PAIRWISE_LABELS)) for x in a]
    k = he.cohen_kappa(a, b, he.PAIRWISE_LABELS)
    assert k.value == pytest.approx(_sk(a, b, list(he.PAIRWISE_LABELS)), abs=1e-12)
    assert k.observed == pytest.approx(np.mean(np.array(a) == np.array(b)))
    la = [str(x) for x in rng.integers(1, 6, n)]
    lb = [str(min(5, max(1, int(x) + int(rng.integers(-1, 2))))) for x in la]
    for weights in (None, "linear", "quadratic"):
        got = he.cohen_kappa(la, lb, he.LIKERT_LABELS, weights).value
        assert got == pytest.approx(_sk(la, lb, list(he.LIKERT_LABELS), weights), abs=1e-12), weights


def test_cohen_textbook_and_one_class():
    # Cohen (1960)-style 2×2 example (Wikipedia "Cohen's kappa"): 50 items, 20 yes/yes, 15 no/no, 5 + 10 split
    a = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    k = he.cohen_kappa(a, b)
    assert k.value == pytest.approx(0.4) and k.observed == pytest.approx(0.7) and k.expected == pytest.approx(0.5)
    same = he.cohen_kappa(["A"] * 6, ["A"] * 6, he.PAIRWISE_LABELS)
    assert same.value is None and same.code == "llmops.kappa.one_class" and same.observed == 1.0
    assert same.fmt == {"label": "A", "agreement": 1.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(cohen_kappa_score(["A"] * 6, ["A"] * 6))  # what a page must never show
    assert json.dumps(same.to_json())  # no NaN in the JSON
    # one rater constant, the other not: defined (0 here), not "one class"
    assert he.cohen_kappa(["A"] * 4, ["A", "B", "A", "B"], he.PAIRWISE_LABELS).value == pytest.approx(0.0)
    assert he.cohen_kappa(["A"], ["A"]).code == "llmops.kappa.too_few"
    with pytest.raises(InputError) as err:
        he.cohen_kappa(["A", "B"], ["A"])
    assert err.value.code == "llmops.kappa.unequal"


WIKI_FLEISS = [  # Fleiss (1971) as in Wikipedia "Fleiss' kappa": 10 subjects, 14 raters, 5 categories
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def _formula_ratings():
    cats = he.PAIRWISE_LABELS
    return [
        [cats[(i * 7 + r * 3 + (i * r) % 5) % 3] if (i + r) % 4 else cats[i % 3] for r in range(5)] for i in range(30)
    ]


def _formula_likert():
    return [
        [str(1 + ((i * 3 + r * 2 + (i % 3) * r) % 5)) if r != 1 else str(1 + (i * 3) % 5) for r in range(4)]
        for i in range(20)
    ]


def test_fleiss_equals_statsmodels_values():
    """Exact values statsmodels 0.15.0 (`fleiss_kappa(table, method="fleiss")`) gave for these tables in a
    throw-away venv; the textbook value of the Wikipedia example is 0.210."""
    k = he.fleiss_kappa_table(np.array(WIKI_FLEISS))
    assert k.value == pytest.approx(0.20993070442195522, abs=1e-12) and round(k.value, 3) == 0.210
    assert (k.n_items, k.n_raters) == (10, 14)
    assert he.fleiss_kappa(_formula_ratings(), he.PAIRWISE_LABELS).value == pytest.approx(
        0.16955709711846328, abs=1e-12
    )
    assert he.fleiss_kappa(_formula_likert(), he.LIKERT_LABELS).value == pytest.approx(-0.04248110502997138, abs=1e-12)


def test_fleiss_live_against_statsmodels():
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    table = np.array(WIKI_FLEISS)
    assert he.fleiss_kappa_table(table).value == pytest.approx(inter_rater.fleiss_kappa(table, method="fleiss"))


def test_fleiss_one_class_and_bad_shapes():
    k = he.fleiss_kappa([["B", "B", "B"]] * 4, he.PAIRWISE_LABELS)
    assert k.value is None and k.code == "llmops.kappa.one_class" and k.fmt["label"] == "B"
    with pytest.raises(InputError) as err:
        he.fleiss_kappa([["A", "B"], ["A"]])
    assert err.value.code == "llmops.kappa.unequal"
    assert he.fleiss_kappa([["A"], ["B"]]).code == "llmops.kappa.too_few"


def test_agreement_report_from_the_store(store, pairs):
    ids = [p.pair_id for p in pairs[:12]]
    ref = [p.reference for p in pairs[:12]]
    flip = {"A": "B", "B": "A", "tie": "tie"}
    kim = list(ref)  # agrees with the developers everywhere
    lee = [flip[x] if i % 3 == 0 else x for i, x in enumerate(ref)]
    park = [flip[x] if i % 2 == 0 else x for i, x in enumerate(ref)]
    for name, labels in (("kim", kim), ("lee", lee), ("park", park)):
        store.add_learner(name)
        for item, label in zip(ids, labels, strict=True):
            store.label(name, item, "pairwise", label)
    store.add_learner("choi")  # registered, no labels yet: not a rater
    report = he.agreement(store, "pairwise")
    assert report.learners == ["kim", "lee", "park"] and report.labels == 36
    by_pair = {(p.rater_a, p.rater_b): p.kappa for p in report.pairs}
    cats = list(he.PAIRWISE_LABELS)
    assert by_pair[("kim", "lee")].value == pytest.approx(_sk(kim, lee, cats), abs=1e-12)
    assert by_pair[("lee", "park")].value == pytest.approx(_sk(lee, park, cats), abs=1e-12)
    # Fleiss on the 12 items all three labelled (ids sorted, as the report orders them)
    order = sorted(range(12), key=lambda i: ids[i])
    expected = he.fleiss_kappa([[kim[i], lee[i], park[i]] for i in order], he.PAIRWISE_LABELS)
    assert report.fleiss.value == pytest.approx(expected.value) and report.fleiss.n_items == 12
    vs = {r.learner: r for r in report.vs_reference}
    assert vs["kim"].accuracy == 1.0 and vs["kim"].kappa.value == pytest.approx(1.0)
    assert vs["park"].accuracy == pytest.approx(sum(a == b for a, b in zip(park, ref, strict=True)) / 12)
    assert json.dumps(report.to_json())
    empty = he.agreement(store, "likert")
    assert empty.notes == ["llmops.labels.none_yet"] and empty.fleiss.code == "llmops.kappa.too_few"


@pytest.mark.slow  # `python -m engine` imports every command (≈ 8 s of CPU; minutes on a loaded machine)
def test_cli_label_agreement_json(tmp_path, pairs):
    path = tmp_path / "labels.sqlite"
    with he.LabelStore(path, pairs) as s:
        for name in ("kim", "lee"):
            s.add_learner(name)
            for p in pairs[:5]:
                s.label(name, p.pair_id, "pairwise", "A")  # both always "A": kappa undefined
                s.label(name, f"{p.pair_id}/A", "likert", 4 if name == "kim" else 5)
    out = subprocess.run(
        [sys.executable, "-m", "engine", "label-agreement", "--json", "--labels-file", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    pairwise, likert = (json.loads(line) for line in out.stdout.strip().splitlines())
    assert pairwise["kind"] == "pairwise" and pairwise["cohen"][0]["kappa"] is None
    assert pairwise["cohen"][0]["code"] == "llmops.kappa.one_class" and pairwise["fleiss"]["kappa"] is None
    assert "NaN" not in out.stdout
    # kim always 4, lee always 5: each rater is constant but they differ → kappa 0, defined
    assert likert["cohen"][0]["kappa"] == 0.0 and likert["cohen"][0]["method"] == "cohen-quadratic"
