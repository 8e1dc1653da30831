"""What every area shares: settings, progress and cancellation, input checks, asset paths, the catalog, corpora.

- `config`: the one settings object (`get_settings()`), read from LLMLAB_* and the other documented variables.
- `progress`: `ProgressFn`, `Cancelled`, and the CLI's progress printer.
- `errors`: `UserError`, the family of errors a learner can fix (a code and its values; pages translate the code).
- `textinput`: bounds for text a learner types (`InputError`, `clean_text`, `parse_numbers`).
- `assets`: where the repository's `assets/` and `lessons/` are.
- `catalog`: lessons/catalog.yaml — chapters, sections, lesson text, quizzes, "show the code" references.
- `corpus`: the Korean documents that ship with the app (the Constitution from the konlpy wheel).
- `precomputed`: small results shipped in assets/precomputed/ (with the command that made them), so no section opens
  empty.
- `faces`: the lazy package faces every area uses.
- `aio`: `run_coroutine`, asyncio.run that also works where a loop already runs (Playwright's sync API, a notebook).
"""

# The face: what pages and other areas use, and where it lives (imported on first use).
from engine.core.faces import lazy_face

_LAZY = {
    "Cancelled": "progress",
    "InputError": "textinput",
    "ProgressFn": "progress",
    "null_progress": "progress",
    "UserError": "errors",
    "clean_text": "textinput",
    "get_settings": "config",
    "load_constitution": "corpus",
    "load_precomputed": "precomputed",
    "Precomputed": "precomputed",
    "save_precomputed": "precomputed",
    "parse_numbers": "textinput",
    "run_coroutine": "aio",
}
__all__ = [
    "Cancelled",
    "InputError",
    "Precomputed",
    "ProgressFn",
    "UserError",
    "clean_text",
    "get_settings",
    "load_constitution",
    "load_precomputed",
    "null_progress",
    "parse_numbers",
    "run_coroutine",
    "save_precomputed",
]
__getattr__ = lazy_face(__name__, globals(), _LAZY)
