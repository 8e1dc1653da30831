"""Chapter 12 commands: `hnsw-sweep` (ANN parameter sweeps), `knn-vs-ann` (exact search against HNSW), `vector-store`
(the persistent LlamaIndex store) and `vector-db-precompute` (the page's shipped results).

    python -m engine knn-vs-ann --n 100000 --dim 384 --json
    python -m engine vector-db-precompute [--only knn_ann,scaling,sweep,store]

`vector-db-precompute` runs the page's slow demos once with its default settings and writes
assets/precomputed/ch12_<section>.json (what the page shows before a learner runs anything; engine/ann/shipped.py).
"""

from __future__ import annotations

import json

from engine.core.progress import cli_progress, null_progress
from engine.core.textinput import parse_numbers


def cmd_hnsw_sweep(args) -> int:
    from engine.ann.sweep import run_sweep

    def emit(row: dict) -> None:
        print(json.dumps(row, ensure_ascii=False) if args.json else _line(row), flush=True)

    run_sweep(
        args.library,
        args.n,
        args.dim,
        parse_numbers(args.M, int, name="M"),
        parse_numbers(args.ef_construction, int, name="efConstruction"),
        parse_numbers(args.ef_search, int, name="efSearch"),
        k=args.k,
        n_queries=args.queries,
        seed=args.seed,
        kind=args.data,
        threads=args.threads,
        progress=null_progress if args.quiet else cli_progress,
        on_row=emit,
    )
    return 0


def _line(r: dict) -> str:
    return (
        f"{r['library']:8s} M={r['M']:<3d} efC={r['ef_construction']:<4d} ef={r['ef_search']:<4d} "
        f"recall@{r['k']}={r['recall_at_k']:.3f} qps={r['qps']:,.0f} build={r['build_s']:.2f}s "
        f"mem={r['memory_bytes'] / 1e6:.1f}MB"
    )


def cmd_knn_vs_ann(args) -> int:
    from engine.ann.exact import EF_GRID, knn_vs_ann_grid

    res = knn_vs_ann_grid(
        args.n, args.dim, k=args.k, ef_searches=EF_GRID, progress=null_progress if args.json else cli_progress
    )
    for p in res.points:
        row = {"n": res.n, "dim": res.dim, "k": res.k, "exact_ms_per_query": res.exact_ms_per_query}
        row |= {"ann_build_s": res.ann_build_s, "ef_search": p.ef_search, "ann_ms_per_query": p.ann_ms_per_query}
        row |= {"recall_at_k": p.recall, "speedup": p.speedup}
        print(json.dumps(row) if args.json else "  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return 0


def cmd_vector_db_precompute(args) -> int:
    from engine.ann import shipped
    from engine.commands._common import precompute_sections
    from engine.vectorstore.shipped import store_data

    def make(section, progress):
        return store_data(progress) if section == "store" else shipped.make(section, progress)

    return precompute_sections(args, "vector-db-precompute", (*shipped.SECTIONS, "store"), make, shipped.name)


def cmd_vector_store(args) -> int:
    from engine.vectorstore import open_store

    store = open_store(args.collection, backend=args.backend)
    if args.action == "info":
        out = store.info()
    elif args.action == "load-corpus":
        out = {"added": store.load_corpus(replace=args.replace, progress=cli_progress)}
    elif args.action == "add":
        store.add([{"doc_id": args.doc_id, "text": args.text, "metadata": json.loads(args.metadata or "{}")}])
        out = {"added": args.doc_id}
    elif args.action == "update":
        store.update(args.doc_id, text=args.text, metadata=json.loads(args.metadata) if args.metadata else None)
        out = {"updated": args.doc_id}
    elif args.action == "delete":
        store.delete(args.doc_id)
        out = {"deleted": args.doc_id}
    else:  # query
        filters = json.loads(args.where) if args.where else None
        out = {"query": args.text, "results": [h.as_dict() for h in store.query(args.text, args.k, filters)]}
    print(json.dumps(out, ensure_ascii=False) if args.json else json.dumps(out, ensure_ascii=False, indent=2))
    return 0


def register(sub) -> None:
    s = sub.add_parser("hnsw-sweep", help="recall@k / queries/s / memory / build time over M, efC, efSearch")
    s.add_argument("--library", choices=["hnswlib", "faiss", "scratch"], default="hnswlib")
    s.add_argument("--n", type=int, default=20_000, help="vectors in the index")
    s.add_argument("--dim", type=int, default=128)
    s.add_argument("--M", default="8,16", help="comma-separated M values")
    s.add_argument("--ef-construction", default="200", help="comma-separated efConstruction values")
    s.add_argument("--ef-search", default="16,64,128", help="comma-separated efSearch values")
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--queries", type=int, default=1000, help="held-out query vectors")
    s.add_argument("--data", choices=["gaussian", "clustered"], default="gaussian")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int, default=2, help="build threads (queries are timed on one thread)")
    s.add_argument("--json", action="store_true", help="one JSON object per setting on stdout")
    s.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    s.set_defaults(func=cmd_hnsw_sweep)

    kv = sub.add_parser("knn-vs-ann", help="exact KNN vs one hnswlib build, per efSearch: ms per query, recall@k")
    kv.add_argument("--n", type=int, default=10_000, help="vectors in the index")
    kv.add_argument("--dim", type=int, default=64)
    kv.add_argument("--k", type=int, default=10)
    kv.add_argument("--json", action="store_true", help="one JSON object per efSearch on stdout")
    kv.set_defaults(func=cmd_knn_vs_ann)

    pc = sub.add_parser(
        "vector-db-precompute", help="run chapter 12's slow demos once and write assets/precomputed/ch12_*.json"
    )
    pc.add_argument("--only", default="", help="comma-separated sections (default all): knn_ann, scaling, sweep, store")
    pc.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    pc.set_defaults(func=cmd_vector_db_precompute)

    v = sub.add_parser("vector-store", help="the vector store behind LlamaIndex (Chroma, ch.12's sqlite, or Pinecone)")
    v.add_argument("action", choices=["info", "load-corpus", "add", "update", "delete", "query"])
    v.add_argument("--collection", default="constitution")
    v.add_argument(
        "--backend",
        choices=["chroma", "sqlite", "local", "pinecone"],
        default=None,
        help="default: pinecone with PINECONE_API_KEY, else chroma; sqlite (alias local): ch.12 teaching store",
    )
    v.add_argument("--doc-id")
    v.add_argument("--text", default="")
    v.add_argument("--metadata", help='JSON object, e.g. {"part": "본문"}')
    v.add_argument("--where", help='metadata filter as JSON, e.g. {"part": "부칙"} or [["number", ">=", 10]]')
    v.add_argument("--k", type=int, default=5)
    v.add_argument("--replace", action="store_true", help="load-corpus: overwrite documents that exist")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_vector_store)
