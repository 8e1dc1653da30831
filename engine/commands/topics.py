"""Hands-On LLM commands: `topics` (ch.5, clustering and topic modelling with BERTopic, Korean).

python -m engine topics --json                        one JSON object per topic: topic, size, words_ctfidf,
                                                      words_keybert, words_mmr, words_default (the default
                                                      CountVectorizer's words for the same clusters), label,
                                                      top_group, top_group_share, representative
python -m engine topics --corpus kobill               constitution (default), kobill or lessons
python -m engine topics --llm                         also name each topic with the `instruct` model (server)
python -m engine topics --save-precomputed            -> assets/precomputed/h5_topics.json (the page's result, with
                                                      the 2-D map's coordinates)

A summary line (agreement with the known labels, the share of particle-glued topic words for each vectorizer, the
c-TF-IDF check against BERTopic, seconds) goes to stderr. Exit code 2 for a bad option or input.
"""

from __future__ import annotations

import sys

from engine.commands._common import emit_rows, progress_for

PRECOMPUTED = "h5_topics"


def cmd_topics(args) -> int:
    from engine.handson.topics import TopicConfig, run_topics

    cfg = TopicConfig(
        corpus=args.corpus,
        min_cluster_size=args.min_cluster_size,
        n_neighbors=args.n_neighbors,
        seed=args.seed,
        llm=args.llm,
    )
    run = run_topics(cfg, progress=progress_for(args.json or args.quiet))
    if args.save_precomputed:
        from engine.core.precomputed import save_precomputed

        command = "python -m engine topics --save-precomputed"
        defaults = TopicConfig()
        for flag, value, default in (
            ("--corpus", cfg.corpus, defaults.corpus),
            ("--min-cluster-size", cfg.min_cluster_size, defaults.min_cluster_size),
            ("--n-neighbors", cfg.n_neighbors, defaults.n_neighbors),
            ("--seed", cfg.seed, defaults.seed),
        ):
            if value != default:
                command += f" {flag} {value}"
        if cfg.llm:
            command += " --llm"
        saved = save_precomputed(PRECOMPUTED, run.as_dict(), command)
        print(f"wrote assets/precomputed/{saved.name}.json", file=sys.stderr)
    emit_rows(run.rows(), args.json)
    summary = {"corpus": run.corpus, "n_docs": run.n_docs, **run.agreement, "glued": run.glued}
    summary |= {"ctfidf_max_diff": run.ctfidf_max_diff, "seconds": run.seconds}
    print(f"summary: {summary}", file=sys.stderr)
    if run.llm_error:
        print(f"llm labels unavailable: {run.llm_error}", file=sys.stderr)
    return 0


def register(sub) -> None:
    from engine.handson.topics import CORPORA, TopicConfig

    p = sub.add_parser("topics", help="Hands-On ch.5: BERTopic topics of a Korean corpus (Kiwi words, c-TF-IDF)")
    p.add_argument("--corpus", choices=CORPORA, default=TopicConfig.corpus, help="default %(default)s")
    p.add_argument(
        "--min-cluster-size", type=int, default=TopicConfig.min_cluster_size, help="HDBSCAN (default %(default)s)"
    )
    p.add_argument("--n-neighbors", type=int, default=TopicConfig.n_neighbors, help="UMAP (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="UMAP random_state (default 0)")
    p.add_argument("--llm", action="store_true", help="name topics with the instruct model (needs the server)")
    p.add_argument("--json", action="store_true", help="one JSON object per topic on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--save-precomputed", action="store_true", help=f"write assets/precomputed/{PRECOMPUTED}.json")
    p.set_defaults(func=cmd_topics)
