"""What a tool call puts into the model's context: capped text, and errors the model can act on.

One tool must not fill the context window (Qwen-0.5B's server runs 2,048 tokens), so every observation is cut at
`MAX_OBSERVATION_CHARS` with a note saying how much was cut; and a failed call is an observation too ("Error: ...",
with a short code in `ToolOutput.error`), so the model can correct itself and the run goes on.
"""

from __future__ import annotations

from engine.agents.tool import ToolOutput

MAX_OBSERVATION_CHARS = 2_000


def cap(text: str, limit: int = MAX_OBSERVATION_CHARS) -> tuple[str, bool]:
    """`text` cut to `limit` characters with a note saying how much was cut; (text, was_cut)."""
    text = str(text)
    if len(text) <= limit:
        return text, False
    note = f"\n[... cut: showing {limit:,} of {len(text):,} characters]"
    return text[: max(0, limit - len(note))] + note, True


def error_output(code: str, message: str) -> ToolOutput:
    """An observation the model can act on ("Error: ..."), with the code the loop and the page count."""
    return ToolOutput(cap(f"Error: {message}")[0], error=code)
