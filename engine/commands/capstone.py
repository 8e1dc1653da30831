"""The Hands-On capstone: `capstone`, `capstone-serve` and `capstone-tools`.

python -m engine capstone --csv sample --out runs/faq --json     every step as a JSON line, then the summary
python -m engine capstone --csv my.csv --out DIR --serve          ... and keep the REST API running afterwards
python -m engine capstone-serve --model DIR/model.gguf --port 8000   the REST API in the foreground
python -m engine capstone-tools                                   install llama.cpp's GGUF converter (make install)

Each step line has `step`, `seconds`, `ok` (and details); the last line has gguf_bytes, fp32_bytes,
heldout_before, heldout_after, baseline_f1, tokens_per_second and api_url.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import asdict
from pathlib import Path

from engine.commands._common import print_obj, progress_for


def register(sub) -> None:
    p = sub.add_parser("capstone", help="CSV -> LoRA SFT -> merge -> GGUF -> 4-bit -> REST API, measured")
    p.add_argument("--csv", required=True, help="a CSV with question/answer columns, or 'sample'")
    p.add_argument("--out", required=True, type=Path, help="folder for every artifact of the run")
    p.add_argument("--base", default="instruct", help="instruct (Qwen2.5-Coder-0.5B), chat (SmolLM2-135M) or a HF dir")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--max-steps", type=int, default=200)
    p.add_argument("--quant", default="Q4_K_M", choices=["Q4_K_M", "Q4_0", "Q5_K_M", "Q8_0"])
    p.add_argument("--max-heldout", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-api", action="store_true", help="skip starting and calling the REST API")
    p.add_argument("--serve", action="store_true", help="after the run, serve the API in the foreground")
    p.add_argument("--port", type=int, default=8000, help="port for --serve")
    p.add_argument("--json", action="store_true")
    p.add_argument("--save-precomputed", action="store_true", help="write assets/precomputed/hc_capstone.json")
    p.set_defaults(func=_capstone)

    s = sub.add_parser("capstone-serve", help="the capstone's FastAPI REST API over a GGUF model (foreground)")
    s.add_argument("--model", required=True, type=Path)
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--token", default=None, help="bearer token (default: $LLMLAB_API_TOKEN, else a new random one)")
    s.add_argument("--rate", type=int, default=60, help="requests per minute per token")
    s.add_argument("--max-body", type=int, default=8192, help="largest request body in bytes")
    s.set_defaults(func=_serve)

    t = sub.add_parser("capstone-tools", help="install llama.cpp's GGUF converter from the locked sdist (once)")
    t.add_argument("--sdist", type=Path, default=None, help="a llama-cpp-python .tar.gz already downloaded")
    t.set_defaults(func=_tools)


def _capstone(args) -> int:
    from engine.capstone.pipeline import CapstoneConfig, run_capstone
    from engine.capstone.sft import SftConfig

    sft = SftConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        rank=args.rank,
        alpha=2 * args.rank,
        seed=args.seed,
        max_steps=args.max_steps,
    )
    base = args.base if args.base in ("instruct", "chat") else Path(args.base)
    cfg = CapstoneConfig(
        base=base, sft=sft, quant=args.quant, max_heldout=args.max_heldout, seed=args.seed, serve=not args.no_api
    )
    summary, steps = None, []
    for item in run_capstone(args.csv, args.out, cfg, progress_for(args.json)):
        if isinstance(item, dict):
            summary = item
        else:
            steps.append(asdict(item))
            print_obj(steps[-1], args.json)
    print_obj(summary, args.json)
    if args.save_precomputed and summary:
        _save(args, steps, summary)
    if args.serve and summary:
        return _serve_model(args.out / "model.gguf", args.port, "127.0.0.1", None, 60, 8192)
    return 0


def _save(args, steps: list[dict], summary: dict) -> None:
    """The page's shipped run: steps, summary, losses and the answers table (paths made relative)."""
    import csv
    import json

    from engine.core.precomputed import save_precomputed

    out = Path(args.out)
    with open(out / "answers.csv", encoding="utf-8-sig") as f:
        answers = list(csv.DictReader(f))
    losses = json.loads((out / "losses.json").read_text())
    summary = {k: v for k, v in summary.items() if k not in ("out_dir", "api_url")}
    data = {"steps": steps, "summary": summary, "losses": losses, "answers": answers}
    saved = save_precomputed(
        "hc_capstone", data, f"python -m engine capstone --csv {args.csv} --out DIR --save-precomputed"
    )
    print(f"saved {saved.name}", file=sys.stderr)


def _serve(args) -> int:
    return _serve_model(args.model, args.port, args.host, args.token, args.rate, args.max_body)


def _serve_model(model: Path, port: int, host: str, token: str | None, rate: int, max_body: int) -> int:
    import uvicorn

    from engine.capstone.api import ApiLimits, create_app

    if not model.is_file():
        print(f"error: no model file {model}", file=sys.stderr)
        return 2
    token = token or os.environ.get("LLMLAB_API_TOKEN") or secrets.token_urlsafe(16)
    if not os.environ.get("LLMLAB_API_TOKEN"):
        print(f"bearer token: {token}", file=sys.stderr)
    app = create_app(model, token, ApiLimits(max_body_bytes=max_body, requests_per_minute=rate))
    print(f"serving {model.name} on http://{host}:{port} (OpenAPI docs at /docs)", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0


def _tools(args) -> int:
    from engine.capstone.gguf_export import install_converter

    path = install_converter(args.sdist, log=lambda m: print(m, file=sys.stderr))
    print(path)
    return 0
