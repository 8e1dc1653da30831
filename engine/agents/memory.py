"""Conversation memory for an agent: a window of the last k turns vs a running summary, and what each forgets.

A model sees only its context. Two cheap ways to carry a conversation forward:

- `WindowMemory(k)`: the last k (question, answer) turns verbatim; anything older is gone, word for word.
- `SummaryMemory(k, summarize)`: the last k turns verbatim plus a running summary; a turn that falls out of the
  window is folded into the summary by the model (`summarize(old_summary, turn) -> new summary`), so facts survive
  in compressed form (or are lost if the summary drops them: the page shows exactly what went in and what came out).

`view()` returns a `MemoryView`: the turns kept, the turns dropped (out of the window), the summary, and the
messages the model will actually see — the page puts both memories side by side on the same conversation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from engine.core.errors import UserError

MAX_WINDOW = 20


@dataclass(frozen=True)
class ChatTurn:
    user: str
    assistant: str


@dataclass(frozen=True)
class MemoryView:
    kind: str  # "window" or "summary"
    kept: list[ChatTurn]  # verbatim in the prompt
    dropped: list[ChatTurn]  # out of the window (for "summary": folded into the summary)
    summary: str  # "" for a window
    messages: list[dict]  # what goes before the next question
    chars: int  # characters of those messages (what the memory costs in context)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "kept": [t.__dict__ for t in self.kept],
            "dropped": [t.__dict__ for t in self.dropped],
            "summary": self.summary,
            "messages": self.messages,
            "chars": self.chars,
        }


def _check_window(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_WINDOW:
        raise UserError("agents.memory.bad_window", low=1, high=MAX_WINDOW, value=k)
    return k


@dataclass
class WindowMemory:
    """The last `k` turns, verbatim."""

    k: int = 3
    turns: list[ChatTurn] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_window(self.k)

    def add(self, user: str, assistant: str) -> None:
        self.turns.append(ChatTurn(user, assistant))

    def messages(self) -> list[dict]:
        return _as_messages(self.turns[-self.k :])

    def view(self) -> MemoryView:
        kept, dropped = self.turns[-self.k :], self.turns[: -self.k] if len(self.turns) > self.k else []
        msgs = self.messages()
        return MemoryView("window", list(kept), list(dropped), "", msgs, _chars(msgs))


SUMMARY_PROMPT = (
    "Update the summary of a conversation. Keep every fact, name and number; at most 3 sentences.\n"
    "Summary so far: {summary}\n"
    "New exchange:\nUser: {user}\nAssistant: {assistant}\n"
    "Updated summary:"
)


def model_summarizer(role: str = "instruct", max_tokens: int = 120) -> Callable[[str, ChatTurn], str]:
    """The default summarizer: the model of `role` rewrites the summary with the turn that fell out."""

    def summarize(summary: str, turn: ChatTurn) -> str:
        from engine.serving import chat

        prompt = SUMMARY_PROMPT.format(summary=summary or "(empty)", user=turn.user, assistant=turn.assistant)
        out = chat([{"role": "user", "content": prompt}], role=role, max_tokens=max_tokens, temperature=0.0)
        return out.strip() or summary

    return summarize


@dataclass
class SummaryMemory:
    """The last `k` turns verbatim plus a running summary of everything older."""

    k: int = 1
    summarize: Callable[[str, ChatTurn], str] | None = None
    turns: list[ChatTurn] = field(default_factory=list)
    summary: str = ""
    folded: int = 0  # how many turns are in the summary

    def __post_init__(self) -> None:
        _check_window(self.k)
        if self.summarize is None:
            self.summarize = model_summarizer()

    def add(self, user: str, assistant: str) -> None:
        self.turns.append(ChatTurn(user, assistant))
        while len(self.turns) - self.folded > self.k:  # the oldest verbatim turn falls out: fold it in
            self.summary = self.summarize(self.summary, self.turns[self.folded])
            self.folded += 1

    def messages(self) -> list[dict]:
        head = [{"role": "system", "content": f"Summary of the conversation so far: {self.summary}"}]
        return (head if self.summary else []) + _as_messages(self.turns[self.folded :])

    def view(self) -> MemoryView:
        msgs = self.messages()
        kept, dropped = list(self.turns[self.folded :]), list(self.turns[: self.folded])
        return MemoryView("summary", kept, dropped, self.summary, msgs, _chars(msgs))


def _as_messages(turns: list[ChatTurn]) -> list[dict]:
    out = []
    for t in turns:
        out += [{"role": "user", "content": t.user}, {"role": "assistant", "content": t.assistant}]
    return out


def _chars(messages: list[dict]) -> int:
    return sum(len(m["content"]) for m in messages)


def demo_conversation(lang: str = "ko") -> tuple[list[tuple[str, str]], list[str]]:
    """The page's conversation (assets/agents/memory_conversation.yaml): (turns, facts stated early)."""
    import yaml

    from engine.core.assets import asset

    raw = yaml.safe_load(asset("agents", "memory_conversation.yaml").read_text(encoding="utf-8"))
    part = raw.get(lang) or raw["ko"]
    return [tuple(t) for t in part["turns"]], list(part["facts"])


def memory_demo(lang: str = "ko", k: int = 1, summarize=None, on_turn=None) -> dict:
    """Both memories over the demo conversation: {"window": view, "summary": view, "facts": {fact: {kind: forgot}}}."""
    turns, facts = demo_conversation(lang)
    window, summary = WindowMemory(k=k), SummaryMemory(k=k, summarize=summarize)
    for i, (user, assistant) in enumerate(turns):
        window.add(user, assistant)
        summary.add(user, assistant)
        if on_turn:
            on_turn(i)
    views = {"window": window.view(), "summary": summary.view()}
    return {
        **{name: v.as_dict() for name, v in views.items()},
        "facts": {f: {name: forgotten(v, [f])[f] for name, v in views.items()} for f in facts},
    }


def forgotten(view: MemoryView, facts: list[str]) -> dict[str, bool]:
    """For each fact (a word or number said earlier), whether the model can still see it in this memory."""
    visible = " ".join(m["content"] for m in view.messages)
    return {f: f not in visible for f in facts}


__all__ = [
    "ChatTurn",
    "MemoryView",
    "SummaryMemory",
    "WindowMemory",
    "demo_conversation",
    "forgotten",
    "memory_demo",
    "model_summarizer",
]
