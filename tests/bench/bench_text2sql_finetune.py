"""Book 6.3 measured: LoRA fine-tuning for Text2SQL on 2 CPU cores, base vs tuned on the 60 held-out Korean Chinook
test questions (execution accuracy), the effect of cleaning the synthetic data (6.3.3) and of the base model (6.3.4).

Every prompt (training and evaluation) carries schema-linked DDL: the tables the gold SQL uses plus one seeded
distractor table (`finetune.linked_ddl`), so a whole example is ~480 tokens for SmolLM2's tokenizer (~310 for
Qwen's) instead of ~1,100 with the full DDL; base and tuned models see exactly the same prompts. Greedy decoding,
in-process (transformers fp32, SDPA attention), batch 8, at most 128 new tokens.

Runs (each a fresh copy of the model; the same seed, steps and batch within a comparison):
- `chat` (SmolLM2-135M-Instruct): base; tuned on the filtered synthetic pairs; tuned on the raw pairs (6.3.3);
- `instruct` (Qwen2.5-Coder-0.5B-Instruct): base; tuned on the filtered pairs, fewer steps (6.3.4);
- `base-ko` (Gemma-3-270M, a base model: plain prompt, no chat template): base; tuned (6.3.4), if not skipped.

    LLMLAB_TRAIN_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python -m tests.bench.bench_text2sql_finetune --save
    # --save writes assets/precomputed/ch06_finetune.json (after every run, so a stopped bench keeps what it did)
    # --only chat,instruct   --variants base,filtered,raw   --steps 20   --instruct-steps 10   --limit 20 (questions)
    # --part F (write this process's runs to F) and --merge F1 F2 ... (join parts into the shipped file)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tests.bench.rows import bench_row

NAME = "ch06_finetune"
COMMAND = "LLMLAB_TRAIN_THREADS=1 OMP_NUM_THREADS=1 python -m tests.bench.bench_text2sql_finetune --save"
# How the shipped file was made on the busy reference machine: the same runs as one-thread processes side by side,
# each `--only ROLE --variants V --part /tmp/part_ROLE_V.json`, then `--merge /tmp/part_*.json` (seeded: the same
# numbers as one sequential run, only sooner).
MADE_AS = "parallel one-thread processes per role/variant with --part, joined with --merge"
SEED = 0
DISTRACTORS = 1


def _data(limit: int | None):
    """Test items with linked DDL; the raw and the filtered template pairs as (ddl, question, sql) triples.

    Raw = what the template generator wrote (`template_pairs`, the shipped set's 960 draws), minus pairs whose
    result equals a held-out gold result (leakage is not "noise": it is removed from both sets); filtered = the
    same draws after `filter_pairs` (runs, returns rows, no duplicates).
    """
    from engine.text2sql.databases import chinook
    from engine.text2sql.finetune import linked_ddl
    from engine.text2sql.questions import chinook_questions
    from engine.text2sql.synthetic import filter_pairs, held_out_sql, template_pairs

    db = chinook()
    test = chinook_questions("test")[:limit] if limit else chinook_questions("test")
    items = [(q.id, q.question, q.sql, linked_ddl(db, q.sql, DISTRACTORS, SEED, q.tables)) for q in test]
    drawn = template_pairs(db, 960, seed=SEED)
    kept, dropped = filter_pairs(drawn, db, held_out_sql())
    leaked = {id(d.pair) for d in dropped if d.reason == "in_test"}
    raw = [p for p in drawn if id(p) not in leaked]

    def triples(pairs):
        return [(linked_ddl(db, p.sql, DISTRACTORS, SEED), p.question, p.sql) for p in pairs]

    reasons: dict[str, int] = {}
    for d in dropped:
        reasons[d.reason] = reasons.get(d.reason, 0) + 1
    return db, items, triples(raw), triples(kept), reasons


def _handwritten():
    """The 150 hand-written train questions (never the dev or test split), with the same kind of linked DDL."""
    from engine.text2sql.databases import chinook
    from engine.text2sql.finetune import linked_ddl
    from engine.text2sql.questions import chinook_questions

    db = chinook()
    return [(linked_ddl(db, q.sql, DISTRACTORS, SEED, q.tables), q.question, q.sql) for q in chinook_questions("train")]


def _eval(model, tokenizer, db, items, label: str, chat: bool | None = None) -> dict:
    from engine.text2sql.finetune import accuracy, evaluate_model

    start = time.perf_counter()
    rows = evaluate_model(
        model, tokenizer, db, items, batch=8, chat=chat, progress=lambda f, m: print(f"  {label} {m}", flush=True)
    )
    seconds = time.perf_counter() - start
    errors: dict[str, int] = {}
    for r in rows:
        if r.error:
            errors[r.error] = errors.get(r.error, 0) + 1
    print(f"[{label}] EX {accuracy(rows):.3f} ({sum(r.ex for r in rows)}/{len(rows)}) in {seconds:.0f} s", flush=True)
    return {
        "ex": round(accuracy(rows), 4),
        "correct": sum(r.ex for r in rows),
        "n": len(rows),
        "errors": errors,
        "executed": sum(r.error is None for r in rows),  # predictions that ran (right or wrong)
        "empty": sum(not r.pred_sql for r in rows),
        "seconds": round(seconds, 1),
        "seconds_per_question": round(seconds / max(1, len(rows)), 2),
        "predictions": [{"id": r.id, "sql": r.pred_sql, "ex": r.ex, "error": r.error} for r in rows],
    }


def _train(triples, role: str, steps: int, batch: int, lr: float, label: str) -> tuple[object, dict]:
    from engine.text2sql.finetune import FinetuneSettings, train_lora

    settings = FinetuneSettings(role=role, steps=steps, batch=batch, lr=lr, max_length=1024, seed=SEED)
    res = train_lora(triples, settings, progress=lambda f, m: print(f"  {m}", flush=True) if m else None)
    print(f"[{label}] {res.log.status} in {res.seconds:.0f} s, loss {res.losses[0]:.3f} -> {res.losses[-1]:.3f}")
    info = {
        "role": role,
        "steps": steps,
        "batch": settings.batch,
        "lr": lr,
        "lora_r": settings.lora_r,
        "lora_alpha": settings.lora_alpha,
        "max_length": settings.max_length,
        "examples": res.examples,
        "trainable": res.trainable,
        "total": res.total,
        "seconds": round(res.seconds, 1),
        "status": res.log.status,
        "chat_format": res.chat,
        "losses": [round(x, 4) for x in res.losses],
        "token_accuracy": [round(float(r.get("token_accuracy", 0.0)), 4) for r in res.log.train_rows()],
    }
    return res, info


def measure(
    only: tuple[str, ...] = ("chat", "instruct"),
    steps: int = 20,
    instruct_steps: int = 10,
    limit: int | None = None,
    save: bool = False,
    save_adapter_for: tuple[str, ...] = ("chat",),
    part: str | None = None,
    variants: tuple[str, ...] = ("base", "filtered", "raw"),
) -> dict:
    import os
    import platform

    from engine.core.precomputed import save_precomputed
    from engine.models.loading import load_causal_lm
    from engine.models.registry import ROLES
    from engine.text2sql.finetune import ADAPTERS, fast_attention, save_adapter
    from engine.training import training_threads

    db, items, raw, clean, reasons = _data(limit)
    data: dict = {
        "test_questions": len(items),
        "prompt": f"schema-linked DDL: the gold SQL's tables + {DISTRACTORS} seeded distractor tables (oracle linking)",
        "decoding": "greedy, in-process (transformers fp32), batch 8",
        "synthetic": {"raw": len(raw), "filtered": len(clean), "dropped": reasons},
        "threads": int(os.environ.get("LLMLAB_TRAIN_THREADS", "1")),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared with other jobs)",
        "runs": {},
    }
    print(f"test {len(items)}, synthetic raw {len(raw)}, filtered {len(clean)}, dropped {reasons}", flush=True)

    def keep(key: str, value: dict) -> None:
        data["runs"][key] = value
        if part:  # one process per role, merged afterwards (--merge)
            Path(part).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        elif save:
            save_precomputed(NAME, data, COMMAND)

    # role -> (steps, batch, lr): what fits ~10 minutes of training on a busy 2-core machine (module docstring)
    plan = {"chat": (steps, 2, 2e-3), "instruct": (instruct_steps, 2, 1e-3), "base-ko": (steps, 2, 2e-3)}
    with training_threads():
        for role in only:
            role_steps, role_batch, lr = plan[role]
            if "base" in variants:
                lm = load_causal_lm(role)
                fast_attention(lm.model)  # a private copy: SDPA instead of eager attention, ~2x faster
                keep(f"{role}/base", {"role": role, "eval": _eval(lm.model, lm.tokenizer, db, items, f"{role} base")})
                del lm
            sets = {"filtered": clean, "raw": raw} if role == "chat" else {"filtered": clean}
            if "handwritten" in variants:  # 6.3.3 the other way: fewer pairs, written by people, in the test's style
                sets["handwritten"] = _handwritten()
            for name, triples in sets.items():
                if name not in variants:
                    continue
                res, info = _train(triples, role, role_steps, role_batch, lr, f"{role} {name}")
                info["eval"] = _eval(res.model, res.tokenizer, db, items, f"{role} tuned {name}", chat=res.chat)
                info["data"] = name
                if name == "filtered" and role in save_adapter_for and (save or part):
                    path = save_adapter(res.model, ADAPTERS / role, ROLES[role].hub_id)
                    size = (path / "adapter_model.safetensors").stat().st_size
                    info["adapter_bytes"] = size
                    if size > 5_000_000:  # too big to ship in the repository: results only
                        for f in path.iterdir():
                            f.unlink()
                        path.rmdir()
                keep(f"{role}/tuned-{name}", info)
                del res
    return data


def rows_of(data: dict) -> list[dict]:
    rows = []
    runs = data["runs"]
    for key, run in runs.items():
        ev = run["eval"]
        rows.append(bench_row(f"text2sql.finetune.{key}", "execution_accuracy", ev["ex"], "fraction"))
        rows.append(bench_row(f"text2sql.finetune.{key}", "seconds_per_question", ev["seconds_per_question"], "s"))
        executed = ev.get("executed", ev["n"] - sum(ev["errors"].values()))
        rows.append(bench_row(f"text2sql.finetune.{key}", "executable_rate", executed / ev["n"], "fraction"))
        if "losses" in run:
            rows.append(
                bench_row(
                    f"text2sql.finetune.{key}", "train_seconds", run["seconds"], "s", "<= 600", run["seconds"] <= 600
                )
            )
    for role in ("chat", "instruct", "base-ko"):
        if f"{role}/base" in runs and f"{role}/tuned-filtered" in runs:
            base, tuned = runs[f"{role}/base"]["eval"]["ex"], runs[f"{role}/tuned-filtered"]["eval"]["ex"]
            rows.append(
                bench_row(f"text2sql.finetune.{role}", "tuned_minus_base", tuned - base, "EX", "> 0", tuned > base)
            )
    return rows


def merge(parts: list[str]) -> dict:
    """Join the per-role part files into the shipped result (the runs are independent of each other)."""
    from engine.core.precomputed import save_precomputed

    data: dict = {}
    for name in parts:
        one = json.loads(Path(name).read_text(encoding="utf-8"))
        for run in one["runs"].values():  # parts made before "executed" was recorded
            ev = run["eval"]
            ev.setdefault("executed", ev["n"] - sum(ev["errors"].values()))
        runs = {**data.get("runs", {}), **one["runs"]}
        data = {**one, "runs": runs}
    data["made_as"] = MADE_AS
    save_precomputed(NAME, data, COMMAND)
    return data


def run() -> list[dict]:
    return rows_of(measure())


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="chat,instruct")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--instruct-steps", type=int, default=10)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--save", action="store_true")
    ap.add_argument("--variants", default="base,filtered,raw", help="which of base,filtered,raw,handwritten to run")
    ap.add_argument("--part", default=None, help="write this process's runs to a JSON file (merge them later)")
    ap.add_argument("--merge", nargs="*", default=None, help="part files to merge into the shipped JSON")
    a = ap.parse_args()
    if a.merge:
        result = merge(a.merge)
    else:
        result = measure(
            tuple(a.only.split(",")),
            a.steps,
            a.instruct_steps,
            a.limit,
            a.save,
            part=a.part,
            variants=tuple(a.variants.split(",")),
        )
    for row in rows_of(result):
        print(json.dumps(row, ensure_ascii=False))
    sys.exit(0)
