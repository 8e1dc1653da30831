"""Experiment management (book 13.1): every training run of the app logged to MLflow, and compared.

One small API for every training loop. A run is a context manager; its `tee(...)` is the `on_row` callback the
loops already take (engine.training.callbacks.Monitor rows: one dict per step or evaluation), so a command adds a
flag and one `with`, nothing else:

    with track_run("ch04", "align race", params={"steps": 60, "seed": 0}, enabled=args.track) as run:
        logs = runs.race(..., on_row=run.tee(emit, by="run"))      # rows -> per-step metrics (one child run per
        run.log_dataset(dataset_version("toy-preferences", setup.pairs, source="engine.alignment.toy"))  # method)
        run.set_statuses({label: log.status for label, log in logs.items()})
    run.fields(row)   # {"run_id": ..., "tracking_uri": ...} for the CLI's JSON; {} when enabled=False

What a run records:
- parameters (`params=`, `log_params`), immutable like MLflow's own (a second, different value is refused);
- per-step metrics: every finite or non-finite number of a row (`loss`, `reward_mean`, `kl`, …) at the row's
  `step`; evaluation rows (kind="eval") as `eval_<key>`. Buffered and written with `log_batch` every 2 s (or
  1000 values) and at the end: one SQLite transaction per flush instead of one per value. Measured on the busy
  2-core machine (load average 8): a buffered row of 6 numbers ≈ 20-170 µs (median), a flush 40-260 ms; 1000
  steps of 5 ms spent 1.3 s in tracking in all. The curve reaches the store (and the UI) at most 2 s late;
- artifacts: a folder (the LoRA adapter) or a small JSON (`log_dict`), under the run's artifact location;
- the dataset version: `dataset_version(name, rows, source)` hashes the rows' canonical JSON (sha256, the first 16
  hex digits are the MLflow digest), counts them, and logs them as an MLflow dataset input (name, digest,
  source = the code that made it, profile = {"num_rows": n}) — MLflow's own dataset entity, no network: the
  `mlflow.data` helpers would want pandas or a URL; the entity is what they produce. Also as run tags
  `llmlab.dataset.{name,digest,rows}` (searchable: `tags."llmlab.dataset.digest" = '…'`).
- `by="run"`: a command that trains several things in one go (ch.3's Trainer vs plain loop, ch.4's PPO and DPO)
  gets one parent run and a child run per label (`mlflow.parentRunId`; the UI nests them), each with the
  parent's parameters plus its label, the datasets, and its own curves and status.

The store is chapter 9's (engine.rag.tracing): `sqlite:///<LLMLAB_CACHE>/mlflow/mlflow.db` by default,
`LLMLAB_TRACKING_URI` overrides it, `mlflow_ui_command()` opens it. One experiment per chapter: `llmlab-ch03`,
`llmlab-ch04`, …; artifacts of a SQLite store go beside the database, `<dir>/artifacts/<experiment>/`.

Robustness: tracking never costs the run. The store is checked when a run starts (tables and experiment read,
one experiment tag written; a remote server must answer /health within 2 s): a store that fails gives a run
that records nothing, `run_id` None, and `warning` = `llmops.tracking.unwritable` (a missing directory that
cannot be made, a file that is not SQLite, a read-only file) or `llmops.tracking.unreachable` (an http(s) server
that does not answer). A write that fails later (the store broke mid-run) stops the tracking of that run with
`llmops.tracking.write_failed`; the training goes on and returns its result either way. A run whose training
raises is marked FAILED (KILLED for a cancel) and the exception goes on to the caller.

A page's training button: `tracked_work(work, chapter, name, params, dataset=..., by=..., finish=..., on_done=...)`
wraps the `work(progress, on_row, should_stop)` the page hands to ui.jobs into the same work, tracked: the run
above around it, its rows through `tee`, the dataset version(s) logged when it starts, the end status from the
result, `finish(run, result)` for artifacts and final figures, and `on_done(TrackOutcome)` with the run id, the
store and any warning. The result is the work's own. `log_adapter(model)` saves a LoRA adapter into the run the
work is running in (`current_run()`), from deep inside a loop that still holds the model. What each chapter's
page run records is in `run_records`.

Reading, for the page: `list_runs(chapter)` (typed `RunSummary` rows, newest first), `metric_curves(run_ids)`
(per-step curves to overlay), `params_table(run_ids, metric)` (parameters vs a final metric, the columns that
differ between the runs first: a parallel-coordinates chart), `experiments()`. A store that cannot be read raises
`UserError("llmops.tracking.unreadable")` / `("llmops.tracking.unreachable")`.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import math
import os
import re
import threading
import time
import urllib.error
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.core.errors import UserError
from engine.core.textinput import InputError
from engine.rag.tracing import _is_remote, _mlflow, _probe_http, _reason, mlflow_ui_command, tracking_uri

_log = logging.getLogger(__name__)

EXPERIMENT_PREFIX = "llmlab-"
# The training runs that log here (`--track` on their commands); any `chNN` may have an experiment.
CHAPTERS: dict[str, str] = {
    "ch03": "hf-train: the classifier, 🤗 Trainer vs a plain PyTorch loop",
    "ch04": "align: toy PPO and DPO",
    "ch05": "finetune: full / LoRA / QLoRA steps",
    "ch06": "text2sql-finetune: LoRA SFT for Text2SQL",
    "ch11": "mnr-train: the embedding model with MNR loss",
}
_CHAPTER = re.compile(r"^ch\d{2}$")
# MLflow's run statuses from engine.training.callbacks' RunLog status
STATUS = {"finished": "FINISHED", "cancelled": "KILLED", "diverged": "FAILED", "running": "RUNNING"}
FLUSH_VALUES = 1000  # buffered metric values written in one log_batch (its limit)
FLUSH_SECONDS = 2.0  # ... or after this long, so the MLflow UI shows a live curve
MAX_PARAM_CHARS = 6000  # MLflow's limit for a parameter value
_NOT_EVAL = ("step", "kind", "epoch")  # keys of an evaluation row that are not its metrics
_BAD_KEY = re.compile(r"[^0-9A-Za-z_\-. /]")  # what MLflow allows in metric/param keys


def experiment_name(chapter: str) -> str:
    """`llmlab-ch04` for "ch04" (one experiment per chapter)."""
    if not isinstance(chapter, str) or not _CHAPTER.match(chapter):
        raise InputError("llmops.tracking.bad_chapter", value=str(chapter)[:40], example="ch04")
    return EXPERIMENT_PREFIX + chapter


def _key(name: str) -> str:
    return _BAD_KEY.sub("_", str(name))[:250] or "_"


# ---------------------------------------------------------------------------------------------------------------
# dataset versions


@dataclass(frozen=True)
class DatasetVersion:
    """What a run trained or was evaluated on: a content hash, a name and a size."""

    name: str  # e.g. "chinook_synthetic" or "toy-preferences"
    digest: str  # first 16 hex digits of the sha256 of the rows' canonical JSON, one row per line
    rows: int
    source: str = ""  # where the rows came from: a file, or the code that generates them
    context: str = "train"  # MLflow's dataset context tag: train, eval, …

    @property
    def label(self) -> str:
        return f"{self.name}@{self.digest} ({self.rows} rows)"


def _plain(value: Any) -> Any:
    """JSON-able form of a row value: tensors and arrays as lists, dataclasses and tuples as dicts and lists."""
    if hasattr(value, "tolist"):  # torch tensors, numpy arrays and scalars
        return value.tolist()
    if isinstance(value, Path):
        return value.as_posix()
    if hasattr(value, "__dataclass_fields__"):
        return {k: getattr(value, k) for k in value.__dataclass_fields__}
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return repr(value)


def dataset_version(name: str, rows: Iterable[Any], source: str = "", context: str = "train") -> DatasetVersion:
    """Hash `rows` (each one JSON-able: dicts, lists, tuples, str, numbers, tensors) in order: the same rows give
    the same digest on any machine; one changed character, a dropped or a reordered row gives another."""
    digest = hashlib.sha256()
    n = 0
    for row in rows:
        line = json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_plain)
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
        n += 1
    return DatasetVersion(str(name)[:200], digest.hexdigest()[:16], n, str(source)[:500], str(context)[:50])


# ---------------------------------------------------------------------------------------------------------------
# the store


class StoreProblem(Exception):
    """The store cannot be used: `code` (llmops.tracking.*) and the values of its message."""

    def __init__(self, code: str, **fmt: Any) -> None:
        super().__init__(code)
        self.code, self.fmt = code, fmt


_EXPERIMENTS: dict[tuple[str, str], str] = {}  # (uri, experiment name) -> id, for stores that passed the check
_LOCK = threading.RLock()


def _artifact_location(uri: str, experiment: str) -> str | None:
    """SQLite stores keep artifacts beside the database (never in ./mlruns of the working directory)."""
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///")).absolute()
        return (db.parent / "artifacts" / experiment).as_uri()
    return None  # a server chooses (its --artifacts-destination); a file: store keeps them inside itself


def client(uri: str | None = None):
    """An MlflowClient on the store (tracking and model registry in the same place)."""
    uri = uri or tracking_uri()
    # a remote store's client would print "🏃 View run … at: …" to stdout when a run ends: the CLI's stdout is JSON
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    _mlflow()
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _problem(uri: str, exc: BaseException, code: str = "llmops.tracking.unwritable") -> StoreProblem:
    if _is_remote(uri) and isinstance(exc, urllib.error.URLError | OSError | ConnectionError):
        code = "llmops.tracking.unreachable"
    return StoreProblem(code, uri=uri, reason=_reason(exc))


def open_experiment(chapter: str, uri: str | None = None) -> tuple[Any, str]:
    """(client, experiment id) of the chapter's experiment, created if needed; the store checked once per process
    (read the tables, write one experiment tag). Raises StoreProblem."""
    uri = uri or tracking_uri()
    name = experiment_name(chapter)
    with _LOCK:
        if (uri, name) in _EXPERIMENTS:
            return client(uri), _EXPERIMENTS[(uri, name)]
        try:
            if _is_remote(uri):
                _probe_http(uri)  # 2 s at most; MLflow's own client would retry for minutes
            elif uri.startswith("sqlite:///"):
                Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            mlflow_client = client(uri)
            from mlflow.exceptions import MlflowException

            experiment = mlflow_client.get_experiment_by_name(name)
            if experiment is None:
                try:
                    experiment_id = mlflow_client.create_experiment(
                        name, artifact_location=_artifact_location(uri, name), tags={"llmlab.chapter": chapter}
                    )
                except MlflowException:  # another process created it first
                    experiment = mlflow_client.get_experiment_by_name(name)
                    if experiment is None:
                        raise
                    experiment_id = experiment.experiment_id
            else:
                experiment_id = experiment.experiment_id
            # the write probe: a store that reads but cannot be written (a read-only file) fails here
            mlflow_client.set_experiment_tag(
                experiment_id, "llmlab.opened", datetime.now(UTC).isoformat(timespec="seconds")
            )
        except InputError:
            raise
        except Exception as exc:
            raise _problem(uri, exc) from exc
        _EXPERIMENTS[(uri, name)] = experiment_id
        return mlflow_client, experiment_id


def reset() -> None:
    """Forget the checked stores (tests; or after a store was repaired)."""
    with _LOCK:
        _EXPERIMENTS.clear()


# ---------------------------------------------------------------------------------------------------------------
# a tracked run


RowFn = Callable[[dict], None]


class TrackedRun:
    """One MLflow run (a context manager). Never raises for a tracking problem: see `warning`."""

    def __init__(
        self,
        chapter: str,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        enabled: bool = True,
        tags: Mapping[str, Any] | None = None,
        command: str | None = None,
        uri: str | None = None,
        _parent: TrackedRun | None = None,
    ) -> None:
        self.chapter = chapter
        self.name = str(name)[:250]
        self.enabled = bool(enabled)
        self.uri = uri or (tracking_uri() if self.enabled else "")
        self.run_id: str | None = None
        self.warning: str | None = None
        self.warning_fmt: dict[str, Any] = {}
        self.status = "FINISHED"
        self._params: dict[str, str] = {}
        self._pending_params = dict(params or {})
        self._tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self._command = command
        self._parent = _parent
        self._children: dict[str, TrackedRun] = {}
        self._datasets: list[DatasetVersion] = []
        self._by: str | None = None
        self._buffer: list[Any] = []
        self._flushed = time.monotonic()
        self._auto_step = 0
        self._client: Any = None
        self._experiment_id: str | None = None
        self._lock = threading.RLock()
        if self.enabled:
            experiment_name(chapter)  # a bad chapter is the caller's bug: raise before training starts

    # --- lifecycle ------------------------------------------------------------------------------------------------
    def __enter__(self) -> TrackedRun:
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            from engine.core.progress import Cancelled

            killed = issubclass(exc_type, KeyboardInterrupt | Cancelled)
            self.status = "KILLED" if killed else "FAILED"
            if not killed:
                self.set_tags({"llmlab.error": f"{exc_type.__name__}: {str(exc)[:400]}"})
        self.end()
        return False

    @property
    def active(self) -> bool:
        return self.enabled and self.run_id is not None and self.warning is None

    def start(self) -> TrackedRun:
        """Open the store and create the run (`__enter__` does this)."""
        if not self.enabled or self.run_id is not None or self.warning:
            return self
        try:
            if self._parent is not None:
                self._client, self._experiment_id = self._parent._client, self._parent._experiment_id
            else:
                self._client, self._experiment_id = open_experiment(self.chapter, self.uri)
            tags = {
                "llmlab.chapter": self.chapter,
                "mlflow.user": _user(),
                "mlflow.source.type": "LOCAL",
                **({"mlflow.source.name": self._command} if self._command else {}),
                **({"mlflow.parentRunId": self._parent.run_id} if self._parent else {}),
                **self._tags,
            }
            run = self._client.create_run(self._experiment_id, run_name=self.name, tags=tags)
            self.run_id = run.info.run_id
        except StoreProblem as problem:
            self._warn(problem.code, problem.fmt)
            return self
        except Exception as exc:
            self._warn("llmops.tracking.unwritable", {"uri": self.uri, "reason": _reason(exc)})
            return self
        self.log_params(self._pending_params)
        for ds in self._datasets:
            self._write_dataset(ds)
        return self

    def end(self) -> None:
        """Write what is buffered and mark the run (and its children) terminated."""
        if not self.enabled:
            return
        for child in self._children.values():
            child.end()
        if not self.active:
            return
        self.flush()
        self._guard(lambda: self._client.set_terminated(self.run_id, self.status))

    def set_status(self, status: str) -> None:
        """The run's final status: a RunLog status (finished / cancelled / diverged) or an MLflow one."""
        self.status = STATUS.get(str(status).lower(), str(status).upper())

    def set_statuses(self, statuses: Mapping[str, str]) -> None:
        """Each child's final status, by label (`{label: log.status for label, log in logs.items()}`)."""
        for label, status in statuses.items():
            if label in self._children:
                self._children[label].set_status(status)

    def _warn(self, code: str, fmt: dict[str, Any]) -> None:
        if self.warning is None:
            self.warning, self.warning_fmt = code, dict(fmt)
            _log.warning("tracking off for this run (%s): %s", code, fmt.get("reason", ""))

    @property
    def warning_message(self) -> str | None:
        """The first warning of this run or its children, as an English sentence (the CLI's stderr)."""
        for run in (self, *self._children.values()):
            if run.warning:
                return str(UserError(run.warning, **run.warning_fmt))
        return None

    def _guard(self, write: Callable[[], Any]) -> bool:
        """Do one write; a failure switches tracking off for this run (never raises)."""
        if not self.active:
            return False
        try:
            write()
            return True
        except Exception as exc:
            self._warn("llmops.tracking.write_failed", {"uri": self.uri, "reason": _reason(exc)})
            return False

    # --- parameters, tags, datasets, artifacts ------------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Parameters (stringified; MLflow keeps the first value of a key: a different later value is dropped)."""
        if not self.enabled:
            return
        new = {}
        for k, v in params.items():
            key = _key(k)
            text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=_plain)
            text = text[:MAX_PARAM_CHARS]
            if key in self._params:
                if self._params[key] != text:
                    _log.warning("parameter %s already logged as %r; %r dropped", key, self._params[key], text)
                continue
            new[key] = text
        if not new:
            return
        if self.run_id is None and not self.warning:  # not started yet: logged at start
            self._pending_params.update(params)
            return
        if not self.active:
            return
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in new.items()]
        for i in range(0, len(items), 100):
            if not self._guard(lambda chunk=items[i : i + 100]: self._client.log_batch(self.run_id, params=chunk)):
                return
        self._params.update(new)
        for child in self._children.values():
            child.log_params(params)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if not self.active:
            return
        from mlflow.entities import RunTag

        items = [RunTag(str(k)[:250], str(v)[:5000]) for k, v in tags.items()]
        self._guard(lambda: self._client.log_batch(self.run_id, tags=items))

    def log_dataset(self, dataset: DatasetVersion) -> None:
        """The dataset version as an MLflow dataset input (and `llmlab.dataset.*` tags for the train set)."""
        if not self.enabled:
            return
        self._datasets.append(dataset)
        self._write_dataset(dataset)
        for child in self._children.values():
            child.log_dataset(dataset)

    def _write_dataset(self, ds: DatasetVersion) -> None:
        if not self.active:
            return
        from mlflow.entities import Dataset, DatasetInput, InputTag

        entity = Dataset(
            name=ds.name,
            digest=ds.digest,
            source_type="code",
            source=json.dumps({"tags": {"llmlab.source": ds.source}}, ensure_ascii=False),
            profile=json.dumps({"num_rows": ds.rows}),
        )
        inp = DatasetInput(entity, tags=[InputTag("mlflow.data.context", ds.context)])
        if self._guard(lambda: self._client.log_inputs(self.run_id, datasets=[inp])) and ds.context == "train":
            self.set_tags(
                {
                    "llmlab.dataset.name": ds.name,
                    "llmlab.dataset.digest": ds.digest,
                    "llmlab.dataset.rows": ds.rows,
                    "llmlab.dataset.source": ds.source,
                }
            )

    def log_artifacts(self, path: str | Path, artifact_path: str | None = None) -> str | None:
        """A file or a folder (a LoRA adapter) into the run's artifacts; returns its artifact URI, or None."""
        path = Path(path)
        if not self.active or not path.exists():
            return None
        if path.is_dir():
            ok = self._guard(lambda: self._client.log_artifacts(self.run_id, str(path), artifact_path))
            where = artifact_path or ""
        else:
            ok = self._guard(lambda: self._client.log_artifact(self.run_id, str(path), artifact_path))
            where = f"{artifact_path}/{path.name}" if artifact_path else path.name
        return self.artifact_uri(where) if ok else None

    def log_dict(self, obj: Any, artifact_file: str) -> None:
        """A small JSON artifact (a summary, a config)."""
        if self.active:
            text = json.dumps(obj, ensure_ascii=False, indent=1, default=_plain)
            self._guard(lambda: self._client.log_text(self.run_id, text, artifact_file))

    def artifact_uri(self, artifact_path: str = "") -> str | None:
        if self.run_id is None:
            return None
        return f"runs:/{self.run_id}/{artifact_path}".rstrip("/")

    # --- metrics ------------------------------------------------------------------------------------------------
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Numbers at `step` (default: the next automatic step); NaN and ±inf are kept (a divergence is data)."""
        if not self.active:
            return
        from mlflow.entities import Metric

        if step is None:
            self._auto_step += 1
            step = self._auto_step
        now = int(time.time() * 1000)
        with self._lock:
            for k, v in metrics.items():
                if isinstance(v, bool) or not isinstance(v, int | float):
                    continue
                self._buffer.append(Metric(_key(k), float(v), now, int(step)))
            due = len(self._buffer) >= FLUSH_VALUES or time.monotonic() - self._flushed >= FLUSH_SECONDS
        if due:
            self.flush()

    def log_row(self, row: Mapping[str, Any]) -> None:
        """One Monitor row: its numbers at its `step`; an evaluation row's as `eval_<key>`."""
        step = row.get("step")
        step = (
            int(step) if isinstance(step, int | float) and not isinstance(step, bool) and math.isfinite(step) else None
        )
        if row.get("kind") == "eval":  # `eval_loss` beside the training `loss` (as 🤗 Trainer names them)
            numbers = {k if k.startswith("eval_") else f"eval_{k}": v for k, v in row.items() if k not in _NOT_EVAL}
        else:
            numbers = {k: v for k, v in row.items() if k not in ("step", "kind")}
        self.log_metrics(numbers, step)

    def flush(self) -> None:
        with self._lock:
            pending, self._buffer = self._buffer, []
            self._flushed = time.monotonic()
        for i in range(0, len(pending), 1000):
            if not self._guard(lambda chunk=pending[i : i + 1000]: self._client.log_batch(self.run_id, metrics=chunk)):
                return

    # --- children and the on_row callback ---------------------------------------------------------------------
    def child(self, label: str) -> TrackedRun:
        """The nested run for `label` (created on first use, with this run's parameters and datasets)."""
        label = str(label)
        if label not in self._children:
            run = TrackedRun(
                self.chapter,
                label,
                enabled=self.enabled,
                tags=self._tags,
                command=self._command,
                uri=self.uri,
                _parent=self,
            )
            self._children[label] = run
            if self.active:
                run.start()
                run.log_params({**self._params, **({self._by: label} if self._by else {})})
                for ds in self._datasets:
                    run.log_dataset(ds)
            elif self.enabled:
                run._warn(self.warning or "llmops.tracking.unwritable", self.warning_fmt)
        return self._children[label]

    def tee(self, callback: RowFn | None = None, by: str | None = None) -> RowFn | None:
        """The `on_row` to hand a training loop: log the row (into the child named by `row[by]` when `by` is
        given), then call `callback`. Disabled, it is `callback` itself: nothing changes."""
        if not self.enabled:
            return callback
        self._by = by

        def on_row(row: dict) -> None:
            try:
                self._route(row).log_row(row)
            except Exception:  # tracking must never stop the training
                _log.debug("logging a row failed", exc_info=True)
            if callback is not None:
                callback(row)

        return on_row

    def _route(self, row: Mapping[str, Any] | None) -> TrackedRun:
        if self._by and row is not None and row.get(self._by) is not None:
            return self.child(str(row[self._by]))
        return self

    def fields(self, row: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What a CLI adds to a JSON line: the run that holds `row`'s numbers (this run for a summary) and the
        store. {} when tracking is off (the command's output stays as it was)."""
        if not self.enabled:
            return {}
        run = self._route(row) if row is not None else self
        out: dict[str, Any] = {"run_id": run.run_id, "tracking_uri": self.uri}
        if run.warning:
            out["tracking_error"] = run.warning
        return out


def track_run(
    chapter: str,
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    enabled: bool = True,
    tags: Mapping[str, Any] | None = None,
    command: str | None = None,
) -> TrackedRun:
    """A run of `chapter`'s experiment: `with track_run("ch05", "finetune lora", {...}, enabled=args.track) as run:`.

    `enabled=False` gives a run that does nothing and imports nothing (a command without --track)."""
    return TrackedRun(chapter, name, params, enabled=enabled, tags=tags, command=command)


# ---------------------------------------------------------------------------------------------------------------
# a page's training run, tracked (the same run as a command's `--track`, for a `work(progress, on_row, should_stop)`)

Work = Callable[[Any, RowFn, Callable[[], bool]], Any]
DatasetSpec = DatasetVersion | Sequence[DatasetVersion] | Callable[[], DatasetVersion | Sequence[DatasetVersion] | None]


@dataclass(frozen=True)
class TrackOutcome:
    """Where a tracked page run went: its run id and store, or why it recorded nothing (the training ran anyway)."""

    chapter: str
    name: str
    run_id: str | None
    uri: str
    status: str  # MLflow's: FINISHED, FAILED, KILLED
    warning: str | None = None  # an llmops.tracking.* code (the first of the run or its children)
    warning_fmt: dict[str, Any] = field(default_factory=dict)
    children: dict[str, str | None] = field(default_factory=dict)  # label -> child run id (`by=`)

    def as_dict(self) -> dict[str, Any]:
        return {
            "chapter": self.chapter,
            "name": self.name,
            "run_id": self.run_id,
            "uri": self.uri,
            "status": self.status,
            "warning": self.warning,
            "fmt": dict(self.warning_fmt),
            "children": dict(self.children),
        }


def _datasets_of(spec: DatasetSpec | None) -> list[DatasetVersion]:
    found = spec() if callable(spec) and not isinstance(spec, DatasetVersion) else spec
    if found is None:
        return []
    if isinstance(found, DatasetVersion):
        return [found]
    return [d for d in found if isinstance(d, DatasetVersion)]


def result_statuses(result: Any) -> str | dict[str, str] | None:
    """The end status of what a training function returned, in the engine's shapes: a RunSet-like `.logs`
    ({label: RunLog}), a {label: RunLog} dict, an object with `.log` (SFTResult, RMResult) or a `.status`."""
    logs = getattr(result, "logs", result)
    if isinstance(logs, Mapping) and logs and all(isinstance(getattr(v, "status", None), str) for v in logs.values()):
        return {str(k): v.status for k, v in logs.items()}
    for holder in (getattr(result, "log", None), result):
        status = getattr(holder, "status", None)
        if isinstance(status, str):
            return status
    return None


def _outcome(run: TrackedRun) -> TrackOutcome:
    first = next(((r.warning, r.warning_fmt) for r in (run, *run._children.values()) if r.warning), (None, {}))
    return TrackOutcome(
        chapter=run.chapter,
        name=run.name,
        run_id=run.run_id,
        uri=run.uri,
        status=run.status,
        warning=first[0],
        warning_fmt=dict(first[1]),
        children={label: child.run_id for label, child in run._children.items()},
    )


def tracked_work(
    work: Work,
    chapter: str,
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    dataset: DatasetSpec | None = None,
    by: str | None = None,
    status: Callable[[Any], str | Mapping[str, str] | None] = result_statuses,
    finish: Callable[[TrackedRun, Any], None] | None = None,
    on_done: Callable[[TrackOutcome], None] | None = None,
    enabled: bool = True,
    command: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> Work:
    """`work(progress, on_row, should_stop)` as the same work, tracked: one run of `chapter`'s experiment (with a
    child per `row[by]` when `by` is given) holding `params`, every numeric field of every row at the row's step,
    the `dataset` version(s) (a DatasetVersion, several, or a function that makes them, called when the run starts),
    the end status (`status(result)`: a RunLog status, or {label: status} for the children) and whatever `finish(run,
    result)` adds (artifacts, final figures). The result comes back untouched; `on_done(TrackOutcome)` is told
    where the run went, whether the work finished, failed or was cancelled. Tracking never costs the training: a
    store that fails gives an outcome with a warning code (llmops.tracking.*) and a run that recorded nothing.
    `enabled=False` returns `work` itself."""
    if not enabled:
        return work
    experiment_name(chapter)  # a bad chapter is the caller's bug: refused before any training

    def tracked(progress, on_row, should_stop):
        run = TrackedRun(chapter, name, params, tags=tags, command=command)
        outer, _CURRENT.run = getattr(_CURRENT, "run", None), run
        try:
            with run:
                _quietly(run, lambda: [run.log_dataset(d) for d in _datasets_of(dataset)])
                result = work(progress, run.tee(on_row, by=by), should_stop)
                found = _quietly(run, lambda: status(result))
                if isinstance(found, str):
                    run.set_status(found)
                elif isinstance(found, Mapping):
                    run.set_statuses(found)
                    if by is None and len(found) == 1:
                        run.set_status(next(iter(found.values())))
                if finish is not None:
                    _quietly(run, lambda: finish(run, result))
            return result
        finally:
            _CURRENT.run = outer
            if on_done is not None:
                on_done(_outcome(run))

    return tracked


_CURRENT = threading.local()  # the run tracked_work is running in this thread (for `log_adapter` deep in a loop)


def current_run() -> TrackedRun | None:
    """The run of the `tracked_work` running in this thread, None outside one (or with tracking off)."""
    return getattr(_CURRENT, "run", None)


def log_adapter(model: Any, artifact_path: str = "adapter", label: str | None = None, run: TrackedRun | None = None):
    """A PEFT model's adapter folder (LoRA/QLoRA: a few MB; a full model is never copied) into `run` (default:
    the current tracked run; its child `label` when given). Returns the artifact URI, or None: no run, no
    adapter, or the write failed (the run's warning says why). Call it where the model still exists."""
    import tempfile

    run = run or current_run()
    if run is None or not run.active or not hasattr(model, "peft_config"):
        return None
    target = run.child(label) if label is not None else run
    try:
        with tempfile.TemporaryDirectory(prefix="llmlab-adapter-") as out:
            model.save_pretrained(out)
            return target.log_artifacts(out, artifact_path)
    except Exception:
        _log.warning("saving the adapter for run %s failed", target.run_id, exc_info=True)
        return None


def _quietly(run: TrackedRun, do: Callable[[], Any]) -> Any:
    """Something only the tracking needs (a dataset hash, an artifact): a failure is logged, never raised."""
    if not run.active:
        return None
    try:
        return do()
    except Exception:
        _log.warning("tracking step failed for run %s", run.run_id, exc_info=True)
        return None


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


# ---------------------------------------------------------------------------------------------------------------
# reading and comparing runs (the page)


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    chapter: str  # "ch04"
    name: str  # the run name ("align race", or a child's label "dpo")
    status: str  # FINISHED, FAILED, KILLED, RUNNING
    started: datetime  # UTC
    seconds: float | None  # wall time, None while running
    params: dict[str, str]
    metrics: dict[str, float]  # the last value of each metric (at its last step)
    datasets: tuple[DatasetVersion, ...] = ()
    parent_run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)  # llmlab.* and user tags (MLflow's own left out)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "chapter": self.chapter,
            "name": self.name,
            "status": self.status,
            "started": self.started.isoformat(timespec="seconds"),
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "params": self.params,
            "metrics": {k: (v if math.isfinite(v) else str(v)) for k, v in self.metrics.items()},
            "datasets": [
                {"name": d.name, "digest": d.digest, "rows": d.rows, "source": d.source, "context": d.context}
                for d in self.datasets
            ],
            "parent_run_id": self.parent_run_id,
        }


@dataclass(frozen=True)
class Curve:
    """One metric of one run, step by step (a line of the overlay chart)."""

    run_id: str
    run_name: str
    key: str
    steps: list[int]
    values: list[float]


@dataclass(frozen=True)
class ParamsTable:
    """Parameters vs a final metric, one row per run: a parallel-coordinates chart's data."""

    metric: str
    varying: list[str]  # parameters whose values differ between the runs (the axes worth drawing)
    constant: dict[str, str]  # parameters every run shares
    rows: list[dict[str, Any]]  # {"run_id", "name", <param>: float or str, ..., <metric>: float or None}


def _readable(uri: str | None = None):
    uri = uri or tracking_uri()
    try:
        if _is_remote(uri):
            _probe_http(uri)
        elif uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
            return None  # no store yet: nothing was tracked (not an error, and nothing is created)
        return client(uri)
    except Exception as exc:
        problem = _problem(uri, exc, "llmops.tracking.unreadable")
        raise UserError(problem.code, **problem.fmt) from exc


def _read(uri: str, what: Callable[[], Any]) -> Any:
    try:
        return what()
    except UserError:
        raise
    except Exception as exc:
        problem = _problem(uri, exc, "llmops.tracking.unreadable")
        raise UserError(problem.code, **problem.fmt) from exc


def experiments() -> list[tuple[str, str]]:
    """(chapter, experiment id) of every `llmlab-chNN` experiment in the store, by chapter."""
    uri = tracking_uri()
    mlflow_client = _readable(uri)
    if mlflow_client is None:
        return []
    found = _read(uri, lambda: mlflow_client.search_experiments(filter_string=f"name LIKE '{EXPERIMENT_PREFIX}ch%'"))
    out = []
    for exp in found:
        chapter = exp.name.removeprefix(EXPERIMENT_PREFIX)
        if _CHAPTER.match(chapter):
            out.append((chapter, exp.experiment_id))
    return sorted(out)


def _datasets(run) -> tuple[DatasetVersion, ...]:
    out = []
    for inp in getattr(getattr(run, "inputs", None), "dataset_inputs", None) or []:
        ds = inp.dataset
        try:
            rows = int(json.loads(ds.profile or "{}").get("num_rows", 0))
        except (ValueError, AttributeError):
            rows = 0
        try:
            source = json.loads(ds.source or "{}").get("tags", {}).get("llmlab.source", ds.source)
        except (ValueError, AttributeError):
            source = ds.source or ""
        context = next((t.value for t in inp.tags if t.key == "mlflow.data.context"), "")
        out.append(DatasetVersion(ds.name, ds.digest, rows, str(source), context))
    return tuple(out)


def _summary(run, chapter: str) -> RunSummary:
    info, data = run.info, run.data
    end = info.end_time
    tags = {k: v for k, v in data.tags.items() if not k.startswith("mlflow.")}
    return RunSummary(
        run_id=info.run_id,
        chapter=chapter,
        name=info.run_name or data.tags.get("mlflow.runName", ""),
        status=str(info.status),
        started=datetime.fromtimestamp(info.start_time / 1000, tz=UTC),
        seconds=None if not end else (end - info.start_time) / 1000,
        params=dict(data.params),
        metrics={k: float(v) for k, v in data.metrics.items()},
        datasets=_datasets(run),
        parent_run_id=data.tags.get("mlflow.parentRunId"),
        tags=tags,
    )


def list_runs(chapter: str | None = None, limit: int = 100) -> list[RunSummary]:
    """Runs of one chapter's experiment (or of every chapter), newest first; [] when nothing was tracked yet."""
    if not isinstance(limit, int) or not 1 <= limit <= 5000:
        raise InputError("input.out_of_range", name="limit", low=1, high=5000, value=limit)
    wanted = None if chapter is None else experiment_name(chapter).removeprefix(EXPERIMENT_PREFIX)
    uri = tracking_uri()
    chosen = [(c, i) for c, i in experiments() if wanted is None or c == wanted]
    if not chosen:
        return []
    mlflow_client = client(uri)
    by_id = {i: c for c, i in chosen}
    runs = _read(
        uri,
        lambda: mlflow_client.search_runs(
            experiment_ids=list(by_id), max_results=limit, order_by=["attributes.start_time DESC"]
        ),
    )
    return [_summary(r, by_id[r.info.experiment_id]) for r in runs]


def get_run(run_id: str) -> RunSummary:
    """One run by id (any chapter)."""
    uri = tracking_uri()
    mlflow_client = _readable(uri)
    if mlflow_client is None or not isinstance(run_id, str) or not run_id.strip():
        raise UserError("llmops.tracking.no_run", run_id=str(run_id)[:100], uri=uri)
    try:
        run = mlflow_client.get_run(run_id.strip())
    except Exception as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "not found" in str(exc).lower():
            raise UserError("llmops.tracking.no_run", run_id=run_id, uri=uri) from exc
        problem = _problem(uri, exc, "llmops.tracking.unreadable")
        raise UserError(problem.code, **problem.fmt) from exc
    experiment = _read(uri, lambda: mlflow_client.get_experiment(run.info.experiment_id))
    return _summary(run, experiment.name.removeprefix(EXPERIMENT_PREFIX))


def metric_curves(run_ids: Sequence[str], keys: Sequence[str] | None = None) -> list[Curve]:
    """Every step of the chosen metrics (default: all of each run's metrics) for the chosen runs, to overlay."""
    if not run_ids:
        return []
    if len(run_ids) > 50:
        raise InputError("input.too_many", name="runs", limit=50, value=len(run_ids))
    uri = tracking_uri()
    summaries = [get_run(r) for r in run_ids]
    mlflow_client = client(uri)
    curves = []
    for s in summaries:
        for key in sorted(s.metrics) if keys is None else keys:
            if key not in s.metrics:
                continue
            history = _read(uri, lambda s=s, key=key: mlflow_client.get_metric_history(s.run_id, key))
            points = sorted((m.step, m.timestamp, m.value) for m in history)
            curves.append(Curve(s.run_id, s.name, key, [p[0] for p in points], [float(p[2]) for p in points]))
    return curves


def _number(text: str) -> float | str:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    return value if math.isfinite(value) else text


def params_table(run_ids: Sequence[str], metric: str) -> ParamsTable:
    """The chosen runs' parameters (numbers where they parse) and the last value of `metric`."""
    summaries = [get_run(r) for r in run_ids]
    keys = sorted({k for s in summaries for k in s.params})
    varying = [k for k in keys if len({s.params.get(k) for s in summaries}) > 1]
    constant = {k: summaries[0].params[k] for k in keys if k not in varying and k in summaries[0].params}
    rows = []
    for s in summaries:
        row: dict[str, Any] = {"run_id": s.run_id, "name": s.name}
        row.update({k: _number(s.params[k]) if k in s.params else None for k in varying})
        row[metric] = s.metrics.get(metric)
        rows.append(row)
    return ParamsTable(metric, varying, constant, rows)


__all__ = [
    "CHAPTERS",
    "Curve",
    "DatasetVersion",
    "ParamsTable",
    "RunSummary",
    "StoreProblem",
    "TrackOutcome",
    "TrackedRun",
    "current_run",
    "dataset_version",
    "experiment_name",
    "experiments",
    "get_run",
    "list_runs",
    "log_adapter",
    "metric_curves",
    "mlflow_ui_command",
    "open_experiment",
    "params_table",
    "result_statuses",
    "track_run",
    "tracked_work",
    "tracking_uri",
]
