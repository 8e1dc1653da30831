"""Chapter 8's run-only demos computed once with the page's default settings, shipped with the app.

The speculative-decoding speed run, offline serving and the load test show a result in
assets/precomputed/ch08_<demo>.json, labelled with the command that made it
(`python -m engine serving-demo <demo> --save-precomputed`), until the learner runs them. The results are plain
rows (dicts), as a live run returns them.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.core.progress import ProgressFn, null_progress

DEMOS = {
    "speculative": "chat, greedy, 32 new tokens, k = 4, early exit after 24 layers, the prompt given with --prompt",
    "offline": "chat, the first 8 load-test prompts, 24 new tokens, batch 1 then one batch",
    "load": "the embedded llama.cpp server (chat, GGUF): 1, 4 and 8 concurrent clients, 16 requests, 32 tokens",
}


def precomputed_name(demo: str, lang: str = "") -> str:
    return f"ch08_{demo}" + (f"_{lang}" if lang and demo == "speculative" else "")


def shell_quote(text: str) -> str:
    """`text` as one shell word on one line: '...' when it can be, bash's $'...' when it holds line breaks."""
    import shlex

    if "\n" not in text:
        return shlex.quote(text)
    return "$'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def demo_command(demo: str, prompt: str = "", lang: str = "") -> str:
    if demo == "speculative":
        return (
            f"python -m engine serving-demo speculative --lang {lang} --prompt {shell_quote(prompt)} --save-precomputed"
        )
    return f"python -m engine serving-demo {demo} --save-precomputed"


def run_demo(demo: str, prompt: str = "", progress: ProgressFn = null_progress) -> list[dict]:
    """One demo with the page's default settings: the rows the page's button produces."""
    from engine.models.loading import load_causal_lm

    if demo == "load":  # the server this starts is stopped when the process exits (engine.serving.llama_server)
        from engine.serving.load_test import run_load_test

        return run_load_test([1, 4, 8], requests=16, max_tokens=32, progress=progress)
    lm = load_causal_lm("chat", progress)
    if demo == "speculative":
        from engine.inference.speculative import compare_methods

        if not prompt:
            raise ValueError("the speculative demo needs the page's default prompt (--prompt)")
        return compare_methods(lm, prompt, max_new_tokens=32, k=4, exit_layers=24, progress=progress)
    if demo == "offline":
        from engine.inference.views import offline_batches
        from engine.serving.load_test import PROMPTS

        return offline_batches(lm, PROMPTS[:8], 24, progress=progress)
    raise ValueError(f"unknown demo {demo!r}; one of {tuple(DEMOS)}")


@dataclass(frozen=True)
class ShippedRows:
    pre: object  # engine.core.Precomputed: the command, date and machine that made it
    rows: list[dict]  # what a live run returns


def shipped_rows(demo: str, lang: str = "", prompt: str | None = None) -> ShippedRows | None:
    """One shipped demo, or None when there is none (or, for the speculative run, when `prompt` is no longer the
    default prompt it answered)."""
    from engine.core.precomputed import load_precomputed

    pre = load_precomputed(precomputed_name(demo, lang))
    if pre is None:
        return None
    if demo == "speculative":
        if prompt is not None and prompt != pre.data["prompt"]:
            return None
        return ShippedRows(pre, pre.data["rows"])
    return ShippedRows(pre, pre.data)


def save_demo(demo: str, prompt: str = "", lang: str = "", progress: ProgressFn = null_progress):
    """Run one demo and write assets/precomputed/ch08_<demo>[_<lang>].json with the command that made it."""
    from engine.core.precomputed import save_precomputed

    rows = run_demo(demo, prompt, progress)
    data = {"prompt": prompt, "rows": rows} if demo == "speculative" else rows
    return save_precomputed(precomputed_name(demo, lang), data, demo_command(demo, prompt, lang))
