"""Chapter 14, generation: `diffusion` (DDPM from scratch: a 2-D toy trained live, a class-conditional UNet on
Fashion-MNIST with classifier-free guidance) and `llava` (a vision tower + MLP projector in front of the frozen `chat`
LM), `llava-check` (our splice = transformers' LlavaForConditionalGeneration on a tiny random config).

    python -m engine diffusion --dataset toy2d --json            # loss rows, then a summary with `seconds`
    python -m engine diffusion --dataset toy2d --save-precomputed  # assets/precomputed/ch14_diffusion_toy.json
    python -m engine diffusion --dataset fashion --save-precomputed  # trains the UNet, ships checkpoint + figures
    python -m engine llava --json                                 # caption_accuracy, chance, train_seconds
    python -m engine llava --save-precomputed --tower clip --stage1-steps 100 --stage2-steps 400 \
        --eval-images 200 --max-seconds 900
    python -m engine llava-check --json

Progress goes to stderr; with --json stdout has one JSON object per line.
"""

from __future__ import annotations

import os
import platform
import sys

from engine.commands._common import print_obj, progress_for


def machine() -> dict:
    """Where the seconds come from: a shared 2-core machine gives other numbers than a laptop."""
    import torch

    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": load,
    }


def _line(base: str, args, flags: tuple[tuple[str, str], ...]) -> str:
    for flag, attr in flags:
        value = getattr(args, attr)
        if value is not None:
            base += f" {flag} {value}"
    return base


def cmd_diffusion(args) -> int:
    if args.dataset == "toy2d":
        return _toy(args)
    return _fashion(args)


def _toy(args) -> int:
    from engine.core.precomputed import save_precomputed
    from engine.multimodal.ddpm import ToyConfig, compare_toy_schedules, forward_strip, train_toy
    from engine.multimodal.schedules import compare_schedules

    progress = progress_for(args.quiet or args.json)
    if args.save_precomputed:
        before = machine()
        data = {
            "schedules": compare_schedules(1000),
            "forward": forward_strip(args.toy, "linear", 100),
            "compare": compare_toy_schedules(args.toy, args.steps or 1500, 50, args.seed or 0, progress=progress),
            "machine": {"before": before, "after": machine()},
        }
        line = _line(
            f"python -m engine diffusion --dataset toy2d --toy {args.toy} --save-precomputed",
            args,
            (("--steps", "steps"), ("--seed", "seed")),
        )
        saved = save_precomputed("ch14_diffusion_toy", data, line)
        print(f"{saved.name}: written ({line})", file=sys.stderr)
        for name, run in data["compare"]["runs"].items():
            print_obj(
                {
                    "schedule": name,
                    "seconds": run["seconds"],
                    "trained_steps": run["trained_steps"],
                    "nearest_distance": run["nearest_distance"],
                    "final_loss": run["rows"][-1]["loss"],
                },
                args.json,
            )
        return 0
    cfg = ToyConfig(dataset=args.toy, schedule=args.schedule or "linear", seed=args.seed or 0)
    if args.steps is not None:
        cfg.steps = args.steps
    if args.max_seconds is not None:
        cfg.max_seconds = args.max_seconds
    res = train_toy(cfg, progress=progress, on_row=(lambda row: print_obj(row, True)) if args.json else None)
    summary = {
        "summary": True,
        "dataset": cfg.dataset,
        "schedule": cfg.schedule,
        "seconds": res.seconds,
        "trained_steps": res.trained_steps,
        "status": res.status,
        "final_loss": res.rows[-1]["loss"],
        "nearest_distance": res.nearest_distance,
        "data_nearest_distance": res.data_nearest_distance,
        "machine": machine(),
    }
    if not args.json:
        for row in res.rows:
            print(f"step {row['step']:5d}  loss {row['loss']:.4f}  ({row['seconds']:.1f} s)")
    print_obj(summary, args.json)
    return 0


def _fashion(args) -> int:
    from engine.core.precomputed import save_precomputed
    from engine.multimodal.fashion_ddpm import (
        FashionConfig,
        generate,
        guidance_comparison,
        load_fashion_unet,
        save_checkpoint,
        train_fashion,
        train_sample_classifier,
    )

    progress = progress_for(args.quiet or args.json)
    before = machine()
    train_info = None
    if not args.reuse_checkpoint:
        cfg = FashionConfig(seed=args.seed or 0)
        if args.steps is not None:
            cfg.steps = args.steps
        if args.max_seconds is not None:
            cfg.max_seconds = args.max_seconds
        if args.schedule:
            cfg.schedule = args.schedule
        run = train_fashion(cfg, progress=progress, on_row=(lambda row: print_obj(row, True)) if args.json else None)
        train_info = {
            "seconds": run.seconds,
            "trained_steps": run.trained_steps,
            "status": run.status,
            "params": run.params,
            "final_loss": run.rows[-1]["loss"],
        }
        if args.save_precomputed:
            path = save_checkpoint(run)
            print(f"checkpoint: {path} ({path.stat().st_size:,} bytes)", file=sys.stderr)
        print_obj({"summary": True, **train_info, "machine": machine()}, args.json)
    if not args.save_precomputed:
        return 0
    loaded = load_fashion_unet()
    clf, clf_acc = train_sample_classifier(size=loaded.model.cfg.image_size)
    strip = generate(loaded, list(range(10)), guidance=3.0, seed=args.seed or 0, keep=8, progress=progress)
    data = {
        "train": train_info or {**loaded.info, "from_checkpoint": True},
        "train_config": loaded.train,
        "rows": loaded.rows,
        "strip": strip,
        "guidance": guidance_comparison(loaded, classifier=clf, progress=progress),
        "classifier_test_accuracy": round(clf_acc, 4),
        "machine": {"before": before, "after": machine()},
    }
    line = _line(
        "python -m engine diffusion --dataset fashion --save-precomputed"
        + (" --reuse-checkpoint" if args.reuse_checkpoint else ""),
        args,
        (("--steps", "steps"), ("--seed", "seed"), ("--max-seconds", "max_seconds")),
    )
    saved = save_precomputed("ch14_diffusion", data, line)
    print(f"{saved.name}: written ({line})", file=sys.stderr)
    for row in data["guidance"]:
        print_obj(
            {
                "guidance": row["guidance"],
                "class_accuracy": row.get("class_accuracy"),
                "diversity": row["diversity"],
                "seconds": row["seconds"],
            },
            args.json,
        )
    return 0


def cmd_llava(args) -> int:
    from engine.core.precomputed import save_precomputed
    from engine.multimodal.llava import LlavaConfig, save_projector, train_llava

    cfg = LlavaConfig(seed=args.seed, tower=args.tower)
    for attr in ("stage1_steps", "stage2_steps", "max_seconds", "eval_images", "batch", "lr"):
        if getattr(args, attr) is not None:
            setattr(cfg, attr, getattr(args, attr))
    before = machine()
    res, model = train_llava(cfg, progress=progress_for(args.quiet or args.json))
    summary = {
        "caption_accuracy": res.caption_accuracy,
        "chance": res.chance,
        "train_seconds": res.train_seconds,
        "eval_seconds": res.eval_seconds,
        "eval_images": res.eval_images,
        "status": res.status,
        "metric": res.metric,
        "tower": res.tower,
        "steps": res.rows[-1]["step"] if res.rows else 0,
        "final_loss": res.rows[-1]["loss"] if res.rows else None,
        "machine": machine(),
    }
    if args.save_precomputed:
        path = save_projector(model, res)
        print(f"checkpoint: {path} ({path.stat().st_size:,} bytes)", file=sys.stderr)
        line = _line(
            "python -m engine llava --save-precomputed" + (f" --tower {args.tower}" if args.tower != "auto" else ""),
            args,
            (
                ("--stage1-steps", "stage1_steps"),
                ("--stage2-steps", "stage2_steps"),
                ("--max-seconds", "max_seconds"),
                ("--eval-images", "eval_images"),
                ("--batch", "batch"),
                ("--lr", "lr"),
            ),
        )
        data = {**res.to_json(), "machine": {"before": before, "after": machine()}}
        saved = save_precomputed("ch14_llava", data, line)
        print(f"{saved.name}: written ({line})", file=sys.stderr)
    print_obj(summary, args.json)
    return 0


def cmd_llava_check(args) -> int:
    from engine.multimodal.llava_check import compare_with_transformers

    res = compare_with_transformers(seed=args.seed)
    print_obj({k: v for k, v in res.to_json().items() if k != "sequence"}, args.json)
    return 0 if res.same_embeds and res.same_logits else 1


def register(sub) -> None:
    d = sub.add_parser("diffusion", help="ch.14: DDPM from scratch (2-D toy live; Fashion-MNIST UNet with guidance)")
    d.add_argument("--dataset", default="toy2d", choices=("toy2d", "fashion"))
    d.add_argument("--toy", default="moons", choices=("moons", "swiss_roll", "ring"), help="the 2-D toy set")
    d.add_argument("--schedule", default=None, choices=("linear", "cosine"))
    d.add_argument("--steps", type=int, default=None, help="training steps (toy 2000, fashion 3000)")
    d.add_argument("--seed", type=int, default=None)
    d.add_argument("--max-seconds", type=float, default=None, help="stop training after this time (toy 30)")
    d.add_argument("--reuse-checkpoint", action="store_true", help="fashion: make the figures from the shipped UNet")
    d.add_argument("--json", action="store_true")
    d.add_argument("--quiet", action="store_true")
    d.add_argument(
        "--save-precomputed",
        action="store_true",
        help="toy2d: ch14_diffusion_toy.json; fashion: checkpoint + ch14_diffusion.json",
    )
    d.set_defaults(func=cmd_diffusion)

    lv = sub.add_parser("llava", help="ch.14: LLaVA-style projector training in front of the frozen chat LM")
    lv.add_argument(
        "--tower",
        default="auto",
        choices=("auto", "clip", "cnn", "random_cnn"),
        help="auto: the chapter's CLIP image tower when shipped, else a small CNN trained with the projector",
    )
    lv.add_argument("--stage1-steps", type=int, default=None, help="caption steps (default 10)")
    lv.add_argument("--stage2-steps", type=int, default=None, help="instruction steps (default 80)")
    lv.add_argument("--batch", type=int, default=None, help="images per step (default 16)")
    lv.add_argument("--lr", type=float, default=None, help="projector learning rate (default 5e-3)")
    lv.add_argument("--max-seconds", type=float, default=None, help="training time limit (default 60)")
    lv.add_argument("--eval-images", type=int, default=None, help="test images scored (default 50)")
    lv.add_argument("--seed", type=int, default=0)
    lv.add_argument("--json", action="store_true")
    lv.add_argument("--quiet", action="store_true")
    lv.add_argument(
        "--save-precomputed",
        action="store_true",
        help="assets/multimodal/llava_projector.pt + assets/precomputed/ch14_llava.json",
    )
    lv.set_defaults(func=cmd_llava)

    c = sub.add_parser("llava-check", help="ch.14: our image splice vs transformers' LlavaForConditionalGeneration")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_llava_check)
