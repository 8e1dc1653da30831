"""What an agent can call: a name, a description the model reads, a JSON schema for the arguments, and a function.

The same `Tool` serves the native path (its `schema()` goes into the OpenAI `tools` field of the local server, vLLM
or OpenAI) and the ReAct text path (its name, description and schema are written into the prompt). A tool returns a
`ToolOutput`: the text the model sees as the observation, plus an optional artifact for the page (a chart, rows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolOutput:
    text: str  # what goes back to the model as the observation
    artifact: Any = None  # what the page may draw (a plotly figure, a table); never shown to the model
    error: str | None = None  # a short code when the call failed ("calculator.bad_expression"); text says why
    truncated: bool = False  # the text was cut to the observation cap (engine.agents.tools.cap)
    seconds: float = 0.0  # wall time of the call, when the tool measured it


@dataclass(frozen=True)
class Tool:
    name: str
    description: str  # English, for the model (small models follow English tool descriptions best)
    parameters: dict  # JSON schema of the arguments: {"type": "object", "properties": {...}, "required": [...]}
    fn: Callable[..., ToolOutput | str]
    labels: dict[str, str] = field(default_factory=dict)  # {"ko": ..., "en": ...}: the name a page shows
    # arguments whose numbers must come from the question or an earlier tool result (engine.agents.grounding):
    # the calculator's expression, where a small model otherwise puts numbers it made up
    grounded: tuple[str, ...] = ()

    def schema(self) -> dict:
        """The OpenAI `tools` entry."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def __call__(self, **arguments) -> ToolOutput:
        out = self.fn(**arguments)
        return out if isinstance(out, ToolOutput) else ToolOutput(str(out))
