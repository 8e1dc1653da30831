"""`python -m engine search|eval|build-index`: Korean retrieval over the Constitution (chapters 10–12).

    python -m engine search --corpus constitution --method hybrid --k 10 --json "대통령의 임기는?"
    python -m engine search --method bm25 --json --queries-file questions.txt
    python -m engine eval --questions assets/constitution_test_questions.yaml --json
    python -m engine build-index [--no-reranker] [--cross-encoder]
    python -m engine retrieval-precompute [--only ch10_word2vec,ch10_hybrid,...]
    python -m engine mnr-train --pairs 192 --epochs 1 --lr 1e-4 [--track] --json

`search` prints one JSON line per query: {"query": ..., "results": [{"doc_id": "제70조", "score": ...}, ...]}.

`mnr-train` is chapter 11's MNR fine-tuning of the `embed` model (the page's run, engine.retrieval.views
.mnr_experiment): one JSON line per logged loss, then a summary with dev hit rates before and after; `--track` logs
it to MLflow (llmlab-ch11, with the synthetic pairs' version) and adds `run_id` and `tracking_uri`.

`--method` takes the engine's pipeline names (engine/retrieval/pipeline.py: bm25, dense, hybrid, rerank). On the
command line `hybrid` is the documented alias of the engine's best pipeline, `rerank` (`BEST_PIPELINE`: BM25 +
Korean dense fused, then the top 30 reranked by late interaction over Gemma-3-270M token states);
`--no-rerank` (or `--fusion rrf`) gives the engine's `hybrid`, the plain fusion. If the reranker could not be
built (no packaged Gemma), `hybrid` falls back to the plain fusion and says so in "notes". `eval` uses the engine
names as they are: there `hybrid` is the plain fusion and `rerank` is what `search --method hybrid` runs.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time

from engine.commands._common import precompute_sections, progress_for
from engine.core.progress import cli_progress
from engine.core.textinput import InputError


def _index(args):
    from engine.retrieval.build import get_index

    return get_index(args.corpus, progress_for(quiet=args.json))


def _queries(args) -> list[str]:
    if args.queries_file:
        from engine.retrieval.evaluation import load_questions

        return [q.question for q in load_questions(args.queries_file)]
    if args.query is None:
        raise InputError("give a QUERY or --queries-file FILE")
    return [args.query]


def cmd_search(args) -> int:
    from engine.core.textinput import InputError
    from engine.retrieval.pipeline import cli_pipeline
    from engine.retrieval.query import check_query

    queries = _queries(args)
    checked = []  # bad queries are answered before the index is loaded
    for query in queries:
        try:
            check_query(query)
            checked.append((query, None))
        except InputError as exc:
            checked.append((query, str(exc)))
    index = _index(args) if any(err is None for _, err in checked) else None
    if index is not None and args.method == "rerank" and index.reranker is None:
        raise InputError("the LM reranker is not built: run `python -m engine build-index` first")
    method, fallback = args.method, None
    if index is not None:
        # the CLI alias (engine/retrieval/pipeline.py): `--method hybrid` asks for the best pipeline
        wanted = cli_pipeline(args.method, not args.no_rerank, args.fusion)
        method = cli_pipeline(args.method, not args.no_rerank, args.fusion, reranker_built=index.reranker is not None)
        if method != wanted:  # the best pipeline, asked for by its alias, needs a reranker this index lacks
            fallback = (
                "no LM reranker in this index: plain hybrid fusion ("
                + ("; ".join(index.notes) or "built with --no-reranker")
                + ")"
            )
    status = 0
    for query, error in checked:
        if error is not None:
            shown = query if len(query) <= 200 else query[:200] + "…"
            print(json.dumps({"query": shown, "results": [], "error": error}, ensure_ascii=False), flush=True)
            print(f"error: {error}", file=sys.stderr)
            status = 2
            continue
        result = index.search(query, method, args.k, fusion=args.fusion, rrf_k=args.rrf_k)
        row = {"query": query, "results": [{"doc_id": h.doc_id, "score": round(h.score, 6)} for h in result.hits]}
        notes = result.notes + ([fallback] if fallback else [])
        if notes:
            row["notes"] = notes
        if args.json:
            print(json.dumps(row, ensure_ascii=False), flush=True)
        else:
            shown = f"{args.method} → {method}" if method != args.method else method
            print(f"# {query}  ({shown}, {result.seconds * 1000:.1f} ms)")
            for note in notes:
                print(f"  note: {note}")
            for h in result.hits:
                print(f"  {h.rank:>3}. {h.doc_id:<10} {h.score:8.4f}  {h.text[:60].replace(chr(10), ' ')}")
    return status


def cmd_eval(args) -> int:
    from engine.retrieval.evaluation import load_questions
    from engine.retrieval.pipeline import BEST_PIPELINE, METHODS

    questions = load_questions(args.questions)
    if any(not q.doc_id for q in questions):
        raise InputError(f"{args.questions}: every question needs a gold doc_id")
    index = _index(args)
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise InputError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if "rerank" in methods and index.reranker is None:
        print("note: no LM reranker in this index; `rerank` skipped", file=sys.stderr)
    start = time.perf_counter()
    results = index.evaluate(questions, methods)
    for method, m in results.items():
        row = {"method": method, "questions": len(questions), **m, "file": str(args.questions)}
        print(
            json.dumps(row, ensure_ascii=False)
            if args.json
            else f"{method:<8} hit@1 {m['hit@1']:.3f}  hit@5 {m['hit@5']:.3f}  MRR {m['mrr']:.3f}"
            + ("   (hybrid → LM rerank: what `search --method hybrid` runs)" if method == BEST_PIPELINE else "")
        )
    if not args.json:
        print(f"({len(questions)} questions, {time.perf_counter() - start:.1f} s)")
    return 0


def cmd_build(args) -> int:
    from engine.retrieval.build import build_index

    index = build_index(args.corpus, cli_progress, force=args.force, reranker=not args.no_reranker)
    row = {
        "corpus": args.corpus,
        "docs": len(index.docs),
        "expansion_questions": sum(len(e) for e in index.expansions),
        "alpha": index.alpha,
        "rerank_weights": list(index.reranker.weights) if index.reranker else None,
        "adapter_loss": index.adapter_history[-1]["loss"] if index.adapter_history else None,
        "build_seconds": index.build_seconds,
    }
    if index.notes:
        row["notes"] = index.notes
    if args.cross_encoder:
        from engine.retrieval.rerank import train_reranker

        ce = train_reranker(index, progress=cli_progress)
        row.update(cross_encoder_mix=ce.mix, cross_encoder_seconds=ce.info.get("seconds"))
    print(json.dumps(row, ensure_ascii=False))
    return 0


def _methods_help() -> str:
    from engine.retrieval.pipeline import BEST_PIPELINE, CLI_ALIASES, PIPELINES

    names = "; ".join(f"{p.name}: {p.stages}" for p in PIPELINES.values())
    aliases = "; ".join(f"`--method {a}` runs `{t}`" for a, t in CLI_ALIASES.items())
    return (
        f"the engine's pipelines ({names}); the best is `{BEST_PIPELINE}`. "
        f"Alias on the command line: {aliases}, the best pipeline (the engine's plain-fusion `hybrid` with "
        "--no-rerank or --fusion rrf, or as a fallback, with a note, when the index has no reranker)"
    )


def cmd_retrieval_precompute(args) -> int:
    """Pages 10 and 11's slow demos, run once with their defaults: assets/precomputed/<section>.json."""
    from engine.retrieval import shipped

    return precompute_sections(args, "retrieval-precompute", shipped.SECTIONS, shipped.make)


def cmd_mnr_train(args) -> int:
    from engine.core import load_constitution
    from engine.llmops.run_records import mnr_pairs
    from engine.llmops.tracking import track_run
    from engine.models import load_sentence_embedder
    from engine.retrieval import DEV_QUESTIONS, finetune_mnr, load_questions, synthetic_text_pairs

    for name, value, low, high in (("pairs", args.pairs, args.batch_size, 5000), ("epochs", args.epochs, 1, 20)):
        if not low <= value <= high:  # MNR drops a last incomplete batch: fewer pairs than a batch train nothing
            raise InputError("input.out_of_range", name=f"--{name}", low=low, high=high, value=value)
    progress = progress_for(quiet=args.json)
    params = {"model": "embed", "pairs": args.pairs, "epochs": args.epochs, "lr": args.lr, "seed": args.seed}
    params |= {"batch_size": args.batch_size}
    tracked = track_run("ch11", "mnr-train", params, enabled=args.track, command="python -m engine mnr-train")
    with tracked:
        docs = load_constitution()
        pairs = synthetic_text_pairs(docs, args.pairs, seed=args.seed)
        if args.track:  # the same record as the page's run (engine.llmops.run_records)
            tracked.log_dataset(mnr_pairs(docs, pairs, seed=args.seed))
        model = load_sentence_embedder("embed")  # a fresh copy, as the page's run
        dev = load_questions(DEV_QUESTIONS)
        with contextlib.redirect_stdout(sys.stderr):  # the trainer prints its log dicts: stdout stays JSON
            res = finetune_mnr(
                model, docs, pairs, dev, args.epochs, args.batch_size, args.lr, seed=args.seed, progress=progress
            )
        for row in res.losses:  # the trainer's logged losses (every 2 steps), after the run
            tracked.log_row(row)
            if args.json:
                print(json.dumps({**row, **tracked.fields()}), flush=True)
        tracked.log_metrics({f"dev_{k}_before": v for k, v in res.before.items()}, 0)
        tracked.log_metrics({f"dev_{k}": v for k, v in res.after.items()}, res.steps)
    summary = {"kind": "summary", "steps": res.steps, "pairs": res.pairs, "before": res.before, "after": res.after}
    summary |= {"seconds": round(res.seconds, 2), **tracked.fields()}
    print(json.dumps(summary, ensure_ascii=False) if args.json else json.dumps(summary, ensure_ascii=False, indent=2))
    if tracked.warning_message:
        print(f"tracking: {tracked.warning_message}", file=sys.stderr)
    return 0


def register(sub) -> None:
    from engine.retrieval.pipeline import METHODS

    m = sub.add_parser("mnr-train", help="ch.11: fine-tune the embed model with MNR loss (dev hit rates before/after)")
    m.add_argument("--pairs", type=int, default=192, help="synthetic (query, article) pairs (default 192)")
    m.add_argument("--epochs", type=int, default=1)
    m.add_argument("--lr", type=float, default=1e-4)
    m.add_argument("--batch-size", type=int, default=16)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--json", action="store_true", help="one JSON object per logged loss, then a summary")
    m.add_argument("--track", action="store_true", help="log the run to MLflow (llmlab-ch11); adds run_id to the JSON")
    m.set_defaults(func=cmd_mnr_train)

    s = sub.add_parser("search", help="search a corpus (bm25 | dense | hybrid | rerank); one JSON line per query")
    s.add_argument("--corpus", default="constitution", help="constitution, kobill, or a UTF-8 .txt file")
    s.add_argument("--method", choices=list(METHODS), default="hybrid", help=_methods_help())
    s.add_argument(
        "--no-rerank", action="store_true", help="with --method hybrid: the engine's `hybrid`, plain BM25+dense fusion"
    )
    s.add_argument("--fusion", choices=["convex", "rrf"], default="convex", help="hybrid fusion (default: convex)")
    s.add_argument("--rrf-k", type=float, default=60.0)
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--json", action="store_true")
    s.add_argument("--queries-file", help="one query per line (or a questions YAML)")
    s.add_argument("query", nargs="?")
    s.set_defaults(func=cmd_search)

    e = sub.add_parser("eval", help="hit@1 / hit@5 / MRR per method on a questions file")
    e.add_argument("--corpus", default="constitution")
    e.add_argument("--questions", default="assets/constitution_dev_questions.yaml")
    e.add_argument(
        "--methods",
        default="bm25,dense,hybrid,rerank",
        help="engine pipeline names, comma-separated: here `hybrid` is the plain fusion and `rerank` the best "
        "pipeline (what `search --method hybrid` runs)",
    )
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eval)

    b = sub.add_parser("build-index", help="build (or load) the cached search index, LM reranker included")
    b.add_argument("--corpus", default="constitution")
    b.add_argument("--no-reranker", action="store_true", help="skip the LM reranker (no Gemma load, ~1 min less)")
    b.add_argument(
        "--cross-encoder", action="store_true", help="also fine-tune the book's MiniLM cross-encoder (a lesson)"
    )
    b.add_argument("--force", action="store_true", help="rebuild even if cached")
    b.set_defaults(func=cmd_build)

    r = sub.add_parser(
        "retrieval-precompute", help="run pages 10-11's slow demos once and write assets/precomputed/ch1[01]_*.json"
    )
    r.add_argument("--only", default="", help="comma-separated sections (default all): see engine/retrieval/shipped.py")
    r.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    r.set_defaults(func=cmd_retrieval_precompute)
