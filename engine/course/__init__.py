"""Course scale (issue 16): learner progress in a real database, admission control for heavy runs. In order:

- `tables`: the progress database's tables (learners, visits, answers, runs); `migrations/` (Alembic) creates them.
- `progress`: `ProgressStore(url)` — sign in by name (optional passphrase, stored only as a salted scrypt hash) or
  anonymously, record visits, answers and runs, resume where the learner left off. SQLite under LLMLAB_CACHE by
  default, PostgreSQL with LLMLAB_DB_URL; a database that is down raises `ProgressUnavailable`.
- `admission`: `AdmissionQueue` — heavy runs queue for LLMLAB_HEAVY_SLOTS slots per machine (across processes;
  FIFO, dead holders reaped, Stop while waiting); `check_memory` enforces the LLMLAB_MAX_RSS_MB ceiling.
- `errors`: the `course.*` typed errors.
- `classroom`: the instructor's view — `class_now` (who is where), `poll` (a quiz's live answer distribution),
  `publish_demo`/`latest_demo` (a share link every learner's sidebar offers).
- `load_app`: `run_load` — simulated learners as real Streamlit sessions over the app's websocket protocol; p50/p95
  per action, errors, server RSS (`python -m engine load-app`).
"""

# The face: what pages and other areas use, and where it lives (imported on first use).
from engine.core.faces import lazy_face

_LAZY: dict[str, str] = {
    # errors
    "CourseError": "errors",
    "LearnerError": "errors",
    "MemoryCeiling": "errors",
    "ProgressUnavailable": "errors",
    "QueueUnavailable": "errors",
    # learner progress
    "ProgressStore": "progress",
    "Learner": "progress",
    "Visit": "progress",
    "Answer": "progress",
    "Run": "progress",
    "ResumePoint": "progress",
    "Progress": "progress",
    "default_db_url": "progress",
    "migrate": "progress",
    "hash_passphrase": "progress",
    "verify_passphrase": "progress",
    "Base": "tables",
    # admission control
    "AdmissionQueue": "admission",
    "Ticket": "admission",
    "QueueEntry": "admission",
    "QueueState": "admission",
    "MemoryCheck": "admission",
    "check_memory": "admission",
    "current_rss": "admission",
    "memory_ceiling": "admission",
    # the instructor's view
    "LearnerNow": "classroom",
    "Poll": "classroom",
    "Demo": "classroom",
    "class_now": "classroom",
    "poll": "classroom",
    "demo_link": "classroom",
    "publish_demo": "classroom",
    "latest_demo": "classroom",
    # the load tool (python -m engine load-app)
    "run_load": "load_app",
    "LearnerPath": "load_app",
    "LoadReport": "load_app",
    "StreamlitSession": "load_app",
    "LoadTestError": "load_app",
}
__all__ = sorted(_LAZY)

__getattr__ = lazy_face(__name__, globals(), _LAZY)
