"""Chapter 7's run-only demos computed once with the page's default settings, shipped with the app.

A learner opening page 7 sees what each button gives before pressing it: the result in
assets/precomputed/ch07_<demo>.json, labelled with the command that made it
(`python -m engine lighter-demo <demo> --save-precomputed`). `demo_record` turns a result into plain JSON and
`demo_result` turns it back into the objects a live run returns, so the page draws both the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from engine.core.progress import ProgressFn, null_progress

# demo -> the settings it runs with (the page's defaults); generation runs on the page's default prompt, which
# lives in the page's strings (Korean and English), so the command names it.
DEMOS = {
    "generation": "chat, greedy, 16 new tokens, chat template, the prompt given with --prompt",
    "kv": "chat, 16 and 64 new tokens with and without the cache",
    "batch": "chat, batch sizes 1, 2, 4, 8 × 16 new tokens, and this machine's roofline",
    "quant": "chat in fp32, int8, NF4 and FP4",
    "gptq_awq": "chat layer 2 q_proj, 4 bits, one scale per row",
    "distillation": "100 epochs, T = 1, α = 1, seed 0",
}


def precomputed_name(demo: str, lang: str = "") -> str:
    return f"ch07_{demo}" + (f"_{lang}" if lang else "")


def demo_command(demo: str, prompt: str = "", lang: str = "") -> str:
    if demo == "generation":
        from engine.inference.shipped import shell_quote

        return (
            f"python -m engine lighter-demo generation --lang {lang} --prompt {shell_quote(prompt)} --save-precomputed"
        )
    return f"python -m engine lighter-demo {demo} --save-precomputed"


def run_demo(demo: str, prompt: str = "", progress: ProgressFn = null_progress):
    """One demo with the page's default settings: what the page's button computes."""
    from engine.models.loading import load_causal_lm

    if demo == "quant":
        from engine.compression.quantization import PRECISIONS, quant_bench

        return quant_bench(PRECISIONS, progress=progress)
    lm = load_causal_lm("chat", progress)
    if demo == "generation":
        from engine.inference.generation import DecodingConfig, generate

        if not prompt:
            raise ValueError("the generation demo needs the page's default prompt (--prompt)")
        return generate(lm, prompt, DecodingConfig("greedy", 16), use_chat_template=True, progress=progress)
    if demo == "kv":
        from engine.inference.kv_cache import kv_bench

        return kv_bench(lm, [16, 64], progress=progress)
    if demo == "batch":
        from engine.inference.batching_throughput import batch_sweep, measure_machine

        return {
            "rows": batch_sweep(lm, [1, 2, 4, 8], 16, progress=progress),
            "machine": measure_machine(str(lm.device)),
        }
    if demo == "gptq_awq":
        from engine.compression.gptq_awq import calibration_texts, compare_methods, heldout_texts

        return compare_methods(lm, calibration_texts(), heldout_texts(), 2, "q_proj", 4, 0, progress=progress)
    if demo == "distillation":
        from engine.compression.distillation import distill

        return distill(lm, progress=progress, epochs=100, temperature=1.0, alpha=1.0, seed=0)
    raise ValueError(f"unknown demo {demo!r}; one of {tuple(DEMOS)}")


def demo_record(demo: str, result):
    """A demo's result as plain JSON."""
    if demo == "batch":
        return {"rows": [asdict(r) for r in result["rows"]], "machine": asdict(result["machine"])}
    if demo in ("kv", "quant"):
        return [asdict(r) for r in result]
    return asdict(result)


def demo_result(demo: str, data):
    """The objects a live run returns, rebuilt from `demo_record`'s JSON (lists back to tuples where needed)."""
    if demo == "generation":
        from engine.inference.generation import GenerationResult, Step, StepCandidate

        steps = [
            Step(
                **{
                    **s,
                    "candidates": [StepCandidate(**c) for c in s["candidates"]],
                    "beams": list(map(tuple, s["beams"])),
                }
            )
            for s in data["steps"]
        ]
        return GenerationResult(**{**data, "steps": steps, "finished_beams": list(map(tuple, data["finished_beams"]))})
    if demo == "kv":
        from engine.inference.kv_cache import KVRun

        return [KVRun(**r) for r in data]
    if demo == "batch":
        from engine.inference.batching_throughput import BatchRun, MachineRoofline

        return {"rows": [BatchRun(**r) for r in data["rows"]], "machine": MachineRoofline(**data["machine"])}
    if demo == "quant":
        from engine.compression.quantization import PrecisionResult

        return [PrecisionResult(**r) for r in data]
    if demo == "gptq_awq":
        from engine.compression.gptq_awq import LayerQuantResult

        curve = [tuple(x) for x in data["awq_curve"]]
        rank = {m: i for i, m in enumerate(("RTN", "GPTQ", "AWQ"))}  # the file's keys are sorted; a run's are not
        by_method = {
            k: dict(sorted(data[k].items(), key=lambda kv: rank.get(kv[0], len(rank))))
            for k in ("errors", "calib_errors", "weight_errors")
        }
        return LayerQuantResult(**{**data, **by_method, "shape": tuple(data["shape"]), "awq_curve": curve})
    if demo == "distillation":
        from engine.compression.distillation import DistillResult, EpochStats

        history = [EpochStats(**h) for h in data["history"]]
        final = {k: EpochStats(**v) for k, v in data["final"].items()}
        return DistillResult(**{**data, "history": history, "final": final})
    raise ValueError(f"unknown demo {demo!r}; one of {tuple(DEMOS)}")


@dataclass(frozen=True)
class ShippedDemo:
    pre: object  # engine.core.Precomputed: the command, date and machine that made it
    result: object  # what a live run of the demo returns
    prompt: str = ""  # generation: the prompt it answered


def shipped_demo(demo: str, lang: str = "") -> ShippedDemo | None:
    """The shipped result of one demo (generation: in `lang`), or None when there is none."""
    from engine.core.precomputed import load_precomputed

    pre = load_precomputed(precomputed_name(demo, lang if demo == "generation" else ""))
    if pre is None:
        return None
    if demo == "generation":
        return ShippedDemo(pre, demo_result(demo, pre.data["result"]), pre.data["prompt"])
    return ShippedDemo(pre, demo_result(demo, pre.data))


def save_demo(demo: str, prompt: str = "", lang: str = "", progress: ProgressFn = null_progress):
    """Run one demo and write assets/precomputed/ch07_<demo>[_<lang>].json with the command that made it."""
    from engine.core.precomputed import save_precomputed

    record = demo_record(demo, run_demo(demo, prompt, progress))
    if demo == "generation":
        record = {"prompt": prompt, "result": record}
    name = precomputed_name(demo, lang if demo == "generation" else "")
    return save_precomputed(name, record, demo_command(demo, prompt, lang))
