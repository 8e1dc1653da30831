"""Foundation commands (chapters 1-2 and the model server): models, serve, tokenize, attention."""

from __future__ import annotations

import signal
import sys
import time

from engine.commands._common import print_obj, progress_for
from engine.core.progress import cli_progress


def cmd_models(args) -> int:
    from engine.models.loading import load_causal_lm, load_sentence_embedder
    from engine.models.registry import ROLES, ModelUnavailable, installed, resolve

    status = 0
    for role in args.roles or [r for r in ROLES if installed(r)]:  # optional roles (instruct-large) when installed
        row = {"role": role}
        try:
            resolved = resolve(role, progress_for(quiet=args.json))
            row.update(
                source=resolved.source,
                model_id=resolved.model_id,
                path=str(resolved.path) if resolved.path else None,
                sha256_ok=resolved.sha256_ok,
                bytes=resolved.bytes,
            )
            if resolved.spec.served_only and not args.no_load:
                row["load_seconds"] = None  # run by the llama.cpp server only, never loaded in-process
            elif not args.no_load:
                loader = load_sentence_embedder if resolved.spec.kind == "sentence-embedding" else load_causal_lm
                loader(role)  # first load may convert; the reported time is the warm load below
                start = time.perf_counter()
                loader(role)
                row["load_seconds"] = round(time.perf_counter() - start, 3)
        except ModelUnavailable as exc:
            row.update(error=str(exc))
            status = 1
        print_obj(row, args.json)
    return status


def cmd_serve(args) -> int:
    from engine.serving import ensure_server, stop_server

    server = ensure_server(cli_progress)
    print(f"llama.cpp server (OpenAI-compatible) at {server.url}  model={server.model}  pid={server.pid}", flush=True)
    print("Ctrl+C stops it.", file=sys.stderr, flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        stop_server()
    return 0


def cmd_tokenize(args) -> int:
    from engine.core.textinput import InputError, clean_text
    from engine.lm.tokenization import TOKENIZERS, load_kiwi, tokenize_one
    from engine.models.loading import load_tokenizer

    try:
        cleaned = clean_text(args.text, max_chars=100_000)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.model == "kiwi":
        name, tok = "Kiwi (morphemes)", load_kiwi()
    else:
        name = next(n for n, (role, _) in TOKENIZERS.items() if role == args.model)
        tok = load_tokenizer(args.model)
    r = tokenize_one(name, tok, cleaned.text)
    print_obj(
        {"model": args.model, "tokens": r.tokens, "ids": r.ids, "count": r.count, "truncated": cleaned.truncated},
        args.json,
    )
    return 0


def cmd_attention(args) -> int:
    from engine.lm.attention_maps import model_attention
    from engine.models.loading import load_causal_lm

    lm = load_causal_lm(args.model, progress_for(quiet=args.json))
    am = model_attention(lm, args.text, args.layer, None if args.head < 0 else args.head)
    print_obj(
        {
            "model": args.model,
            "layer": am.layer,
            "head": am.head,
            "tokens": am.tokens,
            "matrix": [[round(x, 6) for x in row] for row in am.matrix],
            "truncated_tokens": am.truncated_tokens,
        },
        args.json,
    )
    return 0


def register(sub) -> None:
    m = sub.add_parser("models", help="resolve every model role, verify hashes, time a warm load")
    m.add_argument("roles", nargs="*", help="roles to check (default: all installed)")
    m.add_argument("--json", action="store_true", help="one JSON object per line")
    m.add_argument("--no-load", action="store_true", help="resolve and hash only, do not load")
    m.set_defaults(func=cmd_models)

    s = sub.add_parser("serve", help="run the embedded llama.cpp server in the foreground")
    s.set_defaults(func=cmd_serve)

    roles = ["chat", "base-ko", "embed", "kiwi"]
    t = sub.add_parser("tokenize", help="tokenize TEXT with one tokenizer")
    t.add_argument("--model", choices=roles, default="chat")
    t.add_argument("--json", action="store_true")
    t.add_argument("text")
    t.set_defaults(func=cmd_tokenize)

    a = sub.add_parser("attention", help="attention weights of a real model for TEXT")
    a.add_argument("--model", choices=["chat", "base-ko"], default="chat")
    a.add_argument("--layer", type=int, default=0)
    a.add_argument("--head", type=int, default=0, help="-1 = average over heads")
    a.add_argument("--json", action="store_true")
    a.add_argument("text")
    a.set_defaults(func=cmd_attention)
