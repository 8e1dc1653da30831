"""Chapter 14 commands (CLIP): `clip` (train or evaluate our dual encoder; zero-shot, held-out classes, retrieval,
the pixel logistic-regression baseline) and `clip-search` (text -> image search over Fashion-MNIST and photos).

    python -m engine clip --train --json                 # the shipped runs' settings (800 + 400 steps)
    python -m engine clip --train --save-precomputed     # + assets/precomputed/ch14_clip.json and the checkpoint
    python -m engine clip --json                         # evaluate the shipped checkpoint (no training)
    python -m engine clip-search "운동화 사진" --k 10 --json

`clip --train` trains two models: the chapter's CLIP on every class (800 steps; its checkpoint is the page's model)
and the held-out run (sneaker and shirt never seen in training, 400 steps). `--json` prints one object:
zero_shot_accuracy (main run, Fashion-MNIST test, 10 classes, ko+en prompt ensemble), zero_shot_accuracy_{en,ko,
en_ensemble,ko_ensemble}, heldout_class_accuracy (the held-out run, on the held-out classes' test images),
text_to_image_recall_at_10 (capped recall, class prompts as queries, mean of en and ko), baseline_logreg_accuracy
(pixels, 10,000 training images), train_seconds (wall), train_cpu_seconds (this process), steps, logit_scale,
machine (load average before/after), and heldout_run (its seen/held-out split, and the baseline's). Progress goes
to stderr. (D's `llava` and `diffusion` commands live in engine/commands/multimodal_gen.py.)
"""

from __future__ import annotations

import sys

from engine.commands._common import print_obj, progress_for

PRECOMPUTED = "ch14_clip"


def _given(**values) -> dict:
    return {k: v for k, v in values.items() if v is not None}


def _configs(args):
    """(the main run, the held-out run): the shipped settings with the options given."""
    from dataclasses import replace

    from engine.multimodal.clip import SHIPPED, SHIPPED_HOLDOUT

    common = {"seed": args.seed, "threads": args.threads, "batch_size": args.batch_size, "lr": args.lr}
    common["caption_lang"] = args.caption_lang
    common = {k: v for k, v in common.items() if v is not None}
    main = replace(SHIPPED, **common, **_given(max_seconds=args.max_seconds, steps=args.steps))
    held = replace(SHIPPED_HOLDOUT, **common, **_given(max_seconds=args.heldout_seconds, steps=args.heldout_steps))
    if args.holdout is not None:
        held = replace(held, holdout=tuple(h.strip() for h in args.holdout.split(",") if h.strip()))
    return main, held


def command_line(args) -> str:
    line = "python -m engine clip --train --save-precomputed"
    for flag, value in (
        ("--steps", args.steps),
        ("--heldout-steps", args.heldout_steps),
        ("--max-seconds", args.max_seconds),
        ("--heldout-seconds", args.heldout_seconds),
        ("--seed", args.seed),
        ("--threads", args.threads),
        ("--batch-size", args.batch_size),
        ("--lr", args.lr),
        ("--holdout", args.holdout),
        ("--caption-lang", args.caption_lang),
    ):
        if value is not None:
            line += f" {flag} {value}"
    return line


def summary(main, held, baseline: dict, held_baseline: dict | None, machine: dict) -> dict:
    """The command's one object: the main run's figures at the top level, the held-out run's beside them."""
    m = main.metrics
    out = {
        "zero_shot_accuracy": m["zero_shot_accuracy"],
        "heldout_class_accuracy": held.metrics["heldout_class_accuracy"] if held else None,
        "text_to_image_recall_at_10": m["text_to_image_recall_at_10"],
        "train_seconds": main.seconds,
        "train_cpu_seconds": main.cpu_seconds,
        "baseline_logreg_accuracy": baseline["accuracy"],
        "baseline_logreg_n_train": baseline["n_train"],
        "baseline_logreg_seconds": baseline["seconds"],
        "steps": main.steps,
        "eval_seconds": main.eval_seconds,
        "time_limited": main.time_limited,
        "logit_scale": m["logit_scale"],
        "source": main.source,
        "machine": machine,
    }
    out.update({k: v for k, v in m.items() if k not in out and k != "calibration_curve"})
    if held is not None:
        hm = held.metrics
        out["heldout_run"] = {
            "holdout": [held.classes_en[i] for i in held.holdout],
            "zero_shot_accuracy": hm["zero_shot_accuracy"],
            "seen_class_accuracy": hm["seen_class_accuracy"],
            "heldout_class_accuracy": hm["heldout_class_accuracy"],
            "heldout_predicted_as_heldout": hm.get("heldout_predicted_as_heldout"),
            "text_to_image_recall_at_10_en_heldout": hm.get("text_to_image_recall_at_10_en_heldout"),
            "text_to_image_recall_at_10_ko_heldout": hm.get("text_to_image_recall_at_10_ko_heldout"),
            "train_seconds": held.seconds,
            "train_cpu_seconds": held.cpu_seconds,
            "steps": held.steps,
            "baseline_logreg_accuracy": (held_baseline or {}).get("accuracy"),
            "baseline_logreg_seen_accuracy": (held_baseline or {}).get("seen_accuracy"),
            "baseline_logreg_heldout_accuracy": (held_baseline or {}).get("heldout_accuracy"),
        }
    return out


def cmd_clip(args) -> int:
    from engine.multimodal.baseline import logreg_baseline
    from engine.multimodal.clip import ClipResult, evaluate_clip, train_clip
    from engine.multimodal.data import load_images
    from engine.ssm.bench import machine

    progress = progress_for(args.quiet or args.json)
    main_cfg, held_cfg = _configs(args)
    train, test = load_images("train"), load_images("test")
    if train.notice:
        from engine.core.errors import MESSAGES, format_message

        print("notice: " + format_message(MESSAGES[train.notice], train.notice_fmt), file=sys.stderr)
    before = machine(main_cfg.threads)
    held_run = None
    if args.train:
        run = train_clip(main_cfg, progress=progress, train=train, test=test)
        main = run.result
        if not args.no_heldout:
            held_run = train_clip(held_cfg, progress=progress, train=train, test=test, text=run.text)
    else:
        from engine.multimodal.zero_shot import load_clip

        clip = load_clip()
        main = ClipResult(
            clip.config,
            test.source,
            list(clip.classes.en),
            list(clip.classes.ko),
            clip.holdout,
            steps=int(clip.config.get("steps", 0)),
            seconds=0.0,
            cpu_seconds=0.0,
            eval_seconds=0.0,
            time_limited=False,
        )
        evaluate_clip(clip.model, clip.text, test, clip.holdout, main)
    after = machine(main_cfg.threads)
    baseline = logreg_baseline(train, test, main.holdout)
    held = held_run.result if held_run is not None else None
    held_baseline = logreg_baseline(train, test, held.holdout) if held is not None else None
    out = summary(main, held, baseline, held_baseline, {"before": before, "after": after})
    if args.save_precomputed:
        if not args.train:
            print("error: --save-precomputed needs --train", file=sys.stderr)
            return 2
        import tempfile

        from engine.core.precomputed import save_precomputed
        from engine.multimodal.search import build_image_index, search_report
        from engine.multimodal.zero_shot import load_clip, save_clip

        path = save_clip(run)
        clip = load_clip(path, text=run.text)
        with tempfile.TemporaryDirectory() as tmp:
            index = build_image_index(clip, 2000, path=f"{tmp}/s.sqlite")
            search = search_report(index, clip)
            index.store.close()
        line = command_line(args)
        data = {
            "summary": out,
            "result": main.to_json(),
            "heldout": held.to_json() if held is not None else None,
            "baseline": baseline,
            "search": search,
            "checkpoint": {"path": "assets/multimodal/" + path.name, "bytes": path.stat().st_size},
        }
        save_precomputed(PRECOMPUTED, data, line)
        print(f"{PRECOMPUTED}.json and {path.name}: written ({line})", file=sys.stderr)
    if args.json:
        print_obj(out, True)
    else:
        for k in (
            "zero_shot_accuracy",
            "heldout_class_accuracy",
            "text_to_image_recall_at_10",
            "baseline_logreg_accuracy",
            "train_seconds",
        ):
            v = out[k]
            print(f"{k:32s} {v:.4f}" if isinstance(v, float) else f"{k:32s} {v}")
    return 0


def cmd_clip_search(args) -> int:
    from engine.multimodal.search import build_image_index, search_images
    from engine.multimodal.zero_shot import load_clip

    clip = load_clip()
    index = build_image_index(clip, args.images, progress=progress_for(args.quiet or args.json))
    hits = search_images(index, clip, args.query, args.k, include_out_of_domain=not args.no_photos)
    for h in hits:
        if args.json:
            print_obj(h.as_dict(), True)
        else:
            tag = "OUT-OF-DOMAIN " if h.out_of_domain else ""
            print(f"{h.score:.3f}  {tag}{h.node_id:16s} {h.class_en} / {h.class_ko}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("clip", help="ch.14: train/evaluate a small CLIP on Fashion-MNIST (zero-shot, held-out classes)")
    p.add_argument("--train", action="store_true", help="train now (default: evaluate the shipped checkpoint)")
    p.add_argument("--steps", type=int, default=None, help="the main run's steps (default 800)")
    p.add_argument("--heldout-steps", type=int, default=None, help="the held-out run's steps (default 400)")
    p.add_argument("--max-seconds", type=float, default=None, help="also stop the main run after this wall time")
    p.add_argument("--heldout-seconds", type=float, default=None, help="also stop the held-out run after this")
    p.add_argument("--no-heldout", action="store_true", help="skip the held-out run")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default 2)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument(
        "--holdout", default=None, help="the held-out run's classes, comma-separated (default sneaker,shirt)"
    )
    p.add_argument(
        "--caption-lang", choices=("both", "en", "ko"), default=None, help="training captions (default both)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument(
        "--save-precomputed", action="store_true", help="write assets/precomputed/ch14_clip.json + the checkpoint"
    )
    p.set_defaults(func=cmd_clip)

    s = sub.add_parser("clip-search", help="ch.14: text -> image search (Fashion-MNIST test + out-of-domain photos)")
    s.add_argument("query", help="what to find, e.g. '운동화 사진' or 'a photo of a bag'")
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--images", type=int, default=2000, help="how many test images to index (default 2000)")
    s.add_argument("--no-photos", action="store_true", help="leave the out-of-domain photos out of the results")
    s.add_argument("--json", action="store_true")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_clip_search)
