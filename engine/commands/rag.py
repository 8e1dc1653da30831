"""Chapter 9 commands: `rag` (questions through the whole RAG application, one JSON object per answer) and
`rag-precompute` (the page's shipped results, assets/precomputed/ch09_*.json; engine/rag/shipped.py).

    python -m engine rag --corpus constitution --json --queries-file questions.txt
    python -m engine rag --question "대통령의 임기는 몇 년인가요?"
    python -m engine rag --corpus notes.pdf --question "..." --no-cache
    python -m engine rag-precompute [--only ch09_answer,ch09_stores,ch09_cache,ch09_rails]

`--queries-file`: one Korean question per line (blank lines and lines starting with # are skipped). Each answer is
a line of JSON with `question`, `answer`, `sources` (document ids in rank order, e.g. 제70조), `cache`
(miss/exact/semantic, or off with --no-cache), `latency_s`, `trace_id` and `rails` (the verdicts), plus `cited`,
`first_token_s`, `prompt_tokens`, `blocked` and `warnings`. A question the engine refuses (empty, too long) gets a
line with an `error` field and the run goes on; the exit code is then 1.
"""

from __future__ import annotations

from pathlib import Path

from engine.commands._common import print_obj
from engine.core.errors import UserError


def _corpus(name: str):
    from engine.core.textinput import InputError
    from engine.rag import constitution, parse_upload, upload_corpus

    if name == "constitution":
        return constitution()
    path = Path(name)
    if not path.is_file():
        raise InputError("rag.unknown_corpus", name=name)
    return upload_corpus(parse_upload(path.name, path.read_bytes()))


def _questions(args) -> list[str]:
    if args.question:
        return [args.question]
    text = Path(args.queries_file).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def cmd_rag(args) -> int:
    from engine.rag import RagSettings, ask

    corpus = _corpus(args.corpus)
    settings = RagSettings(
        retriever=args.retriever,
        top_k=args.top_k,
        cutoff=args.cutoff,
        cache=not args.no_cache,
        rails=not args.no_rails,
        max_tokens=args.max_tokens,
        model=args.model,
    )
    failed = 0
    for question in _questions(args):
        try:
            run = ask(question, corpus, settings)
            if args.json:
                for _ in run:
                    pass
            else:
                for piece in run:
                    print(piece, end="", flush=True)
                print()
        except UserError as exc:  # one bad line does not stop the others
            failed += 1
            print_obj({"question": question, "error": exc.code, "message": str(exc)}, True)
            continue
        result = run.result
        if args.json:
            print_obj(result.to_json(), True)
        else:
            print(
                f"  sources={','.join(result.sources) or '-'} cited={','.join(result.cited) or '-'} "
                f"cache={result.cache} latency={result.latency_s:.2f}s trace={result.trace_id or '-'}"
            )
    return 1 if failed else 0


def cmd_rag_precompute(args) -> int:
    from engine.commands._common import precompute_sections
    from engine.rag import shipped

    return precompute_sections(args, "rag-precompute", shipped.SECTIONS, shipped.make)


def register(sub) -> None:
    from engine.rag.pipeline import MAX_TOKENS_RANGE, MODELS, TOP_K_RANGE
    from engine.rag.shipped import SECTIONS

    p = sub.add_parser("rag", help="answer questions with the chapter 9 RAG application (LlamaIndex, cache, rails)")
    p.add_argument("--corpus", default="constitution", help="'constitution' or a txt/md/pdf file")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--question", help="one question")
    q.add_argument("--queries-file", help="a text file, one question per line")
    p.add_argument("--retriever", default="best", choices=("best", "chroma"))
    p.add_argument("--top-k", type=int, default=5, help=f"passages retrieved ({TOP_K_RANGE[0]}-{TOP_K_RANGE[1]})")
    p.add_argument("--cutoff", type=float, default=0.0, help="similarity cutoff in [0, 1)")
    p.add_argument(
        "--max-tokens", type=int, default=256, help=f"answer length ({MAX_TOKENS_RANGE[0]}-{MAX_TOKENS_RANGE[1]})"
    )
    p.add_argument(
        "--model",
        default="instruct",
        choices=MODELS,
        help="instruct (0.5B) or instruct-large (1.5B, make install-large)",
    )
    p.add_argument("--no-cache", action="store_true", help="bypass the LLM cache (no lookup, no store)")
    p.add_argument("--no-rails", action="store_true", help="turn the input/passage/output rails off")
    p.add_argument("--json", action="store_true", help="one JSON object per answer on stdout")
    p.set_defaults(func=cmd_rag)

    pc = sub.add_parser("rag-precompute", help="run chapter 9's slow demos once, write assets/precomputed/ch09_*.json")
    pc.add_argument("--only", default="", help="comma-separated sections (default all): " + ", ".join(SECTIONS))
    pc.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    pc.set_defaults(func=cmd_rag_precompute)
