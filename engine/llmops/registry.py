"""The model registry (book 13.2): tuned models and adapters with versions, aliases, lineage and promotions.

MLflow's model registry, in the same store as the runs (engine.llmops.tracking; `LLMLAB_TRACKING_URI` moves
both). A tuned model is a folder a run logged as an artifact (a LoRA adapter: adapter_config.json and
adapter_model.safetensors). Registering it makes version N of a named model:

    v = register_model("text2sql-chat", run_id, artifact_path="adapter")   # version 1, 2, …
    promote("text2sql-chat", v.version, "challenger", who="kim", why="EX 2/60 → 4/60 on chinook-test")
    promote("text2sql-chat", v.version, "champion", who="lee", why="beat v1 on the held-out set")
    model_path("models:/text2sql-chat@champion")   # a local folder: what the alias points at now

- **Versions** are immutable: the source (the run's artifact folder), the run id and the dataset version the run
  trained on (version tags `llmlab.dataset.{name,digest,rows}`, copied from the run's train dataset input) are
  fixed when registered. That is the lineage: model version → run (parameters, curves) → data (a content hash).
- **Aliases** `champion` (what other chapters load) and `challenger` (the candidate being compared) are MLflow
  aliases: moving one is one call and every `models:/<name>@champion` follows it at once, no code change.
- **Promotion records who and why.** `promote` sets the alias and writes version tags
  `llmlab.promoted.<alias>.{by,why,at,replaced}` (the UI shows them on the version's page) and appends one entry to
  the registered model's history (a tag `llmlab.promotion.<ms>` holding JSON); `promotions(name)` reads it back.
  A promotion without a name or a reason is refused: an alias that moved for no recorded reason is the thing a
  registry is there to prevent.
- **Loading**: `model_path("models:/<name>@<alias>")` or `("models:/<name>/<version>")` downloads the version's
  folder once into `<LLMLAB_CACHE>/llmops/registry/` (a version never changes, so the copy is reused) and returns
  it. Chapter 6 takes it anywhere a model is named: `python -m engine text2sql --model
  models:/text2sql-chat@champion --question ...` (engine.text2sql.strategies.predict).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.core.config import get_settings
from engine.core.errors import UserError
from engine.core.textinput import InputError
from engine.llmops.tracking import DatasetVersion, _problem, _readable, client, tracking_uri

ALIASES = ("champion", "challenger")
MAX_WHO = 100
MAX_WHY = 500
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")
HISTORY_TAG = "llmlab.promotion."


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: int
    source: str  # where the files are (the run's artifact folder)
    run_id: str | None  # the run that made it
    aliases: tuple[str, ...]  # e.g. ("champion",)
    created: datetime  # UTC
    dataset: DatasetVersion | None  # what that run trained on
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "aliases": list(self.aliases),
            "run_id": self.run_id,
            "source": self.source,
            "created": self.created.isoformat(timespec="seconds"),
            "dataset": None
            if self.dataset is None
            else {"name": self.dataset.name, "digest": self.dataset.digest, "rows": self.dataset.rows},
            "description": self.description,
            "tags": self.tags,
        }


@dataclass(frozen=True)
class Promotion:
    name: str
    version: int
    alias: str
    who: str
    why: str
    at: datetime  # UTC
    replaced: int | None  # the version that held the alias before, if any

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "who": self.who,
            "why": self.why,
            "at": self.at.isoformat(timespec="seconds"),
            "replaced": self.replaced,
        }


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name.strip()):
        raise InputError("llmops.registry.bad_name", value=str(name)[:120])
    return name.strip()


def _writable():
    """A client on the store, checked like a training run's (the registry lives beside the runs)."""
    from engine.llmops.tracking import StoreProblem, open_experiment

    uri = tracking_uri()
    try:
        open_experiment("ch13", uri)  # proves the store can be written (and holds chapter 13's own runs)
    except StoreProblem as problem:
        raise UserError(problem.code, **problem.fmt) from None
    return client(uri), uri


def _call(uri: str, what, not_found: UserError | None = None):
    """One registry call; MLflow's errors become this module's codes."""
    try:
        return what()
    except UserError:
        raise
    except Exception as exc:
        code = str(getattr(exc, "error_code", ""))
        if not_found is not None and ("RESOURCE_DOES_NOT_EXIST" in code or "not found" in str(exc).lower()):
            raise not_found from exc
        problem = _problem(uri, exc, "llmops.tracking.unreadable")
        raise UserError(problem.code, **problem.fmt) from exc


def _dataset_of_tags(tags: dict[str, str]) -> DatasetVersion | None:
    if "llmlab.dataset.digest" not in tags:
        return None
    try:
        rows = int(tags.get("llmlab.dataset.rows", "0"))
    except ValueError:
        rows = 0
    return DatasetVersion(
        tags.get("llmlab.dataset.name", ""), tags["llmlab.dataset.digest"], rows, tags.get("llmlab.dataset.source", "")
    )


def _info(mv) -> ModelVersionInfo:
    tags = dict(mv.tags or {})
    return ModelVersionInfo(
        name=mv.name,
        version=int(mv.version),
        source=mv.source,
        run_id=mv.run_id or None,
        aliases=tuple(sorted(getattr(mv, "aliases", None) or ())),
        created=datetime.fromtimestamp((mv.creation_timestamp or 0) / 1000, tz=UTC),
        dataset=_dataset_of_tags(tags),
        description=mv.description or "",
        tags=tags,
    )


def register_model(name: str, run_id: str, artifact_path: str = "adapter", description: str = "") -> ModelVersionInfo:
    """A new version of `name` from the folder `artifact_path` of run `run_id`, with the run's train dataset as
    lineage. The registered model is created on its first version."""
    name = _check_name(name)
    mlflow_client, uri = _writable()
    no_run = UserError("llmops.tracking.no_run", run_id=str(run_id)[:100], uri=uri)
    if not isinstance(run_id, str) or not run_id.strip():
        raise no_run
    run = _call(uri, lambda: mlflow_client.get_run(run_id.strip()), no_run)
    artifact_path = str(artifact_path).strip("/")
    listed = _call(uri, lambda: mlflow_client.list_artifacts(run.info.run_id, artifact_path))
    if not listed:
        raise UserError("llmops.registry.no_artifact", run_id=run.info.run_id, path=artifact_path)
    tags = {k: v for k, v in run.data.tags.items() if k.startswith("llmlab.dataset.") or k == "llmlab.chapter"}
    tags["llmlab.run_name"] = run.info.run_name or ""
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.create_registered_model(name, description="a tuned model of LLM Practice Lab")
    except MlflowException as exc:
        if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code) and "already exists" not in str(exc).lower():
            raise UserError("llmops.tracking.unwritable", uri=uri, reason=str(exc)[:200]) from exc
    source = f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}"
    mv = _call(
        uri,
        lambda: mlflow_client.create_model_version(
            name, source, run_id=run.info.run_id, tags=tags, description=description[:1000] or None
        ),
    )
    return _info(mv)


def registered_models() -> list[dict[str, Any]]:
    """Every registered model: name, latest version, aliases {alias: version}."""
    uri = tracking_uri()
    mlflow_client = _readable(uri)
    if mlflow_client is None:
        return []
    found = _call(uri, lambda: mlflow_client.search_registered_models(max_results=1000))
    out = []
    for rm in found:
        latest = max((int(v.version) for v in rm.latest_versions or ()), default=0)
        out.append({"name": rm.name, "latest_version": latest, "aliases": {a: int(v) for a, v in rm.aliases.items()}})
    return sorted(out, key=lambda m: m["name"])


def model_versions(name: str) -> list[ModelVersionInfo]:
    """The versions of `name`, newest first (with their aliases and lineage)."""
    name = _check_name(name)
    uri = tracking_uri()
    mlflow_client = _readable(uri)
    if mlflow_client is None:
        raise UserError("llmops.registry.no_model", name=name, uri=uri)
    found = _call(uri, lambda: mlflow_client.search_model_versions(f"name = '{name}'", max_results=1000))
    if not found:
        raise UserError("llmops.registry.no_model", name=name, uri=uri)
    # search results may leave aliases out: read them from the registered model
    rm = _call(uri, lambda: mlflow_client.get_registered_model(name))
    aliases: dict[int, list[str]] = {}
    for alias, version in rm.aliases.items():
        aliases.setdefault(int(version), []).append(alias)
    out = []
    for mv in found:
        info = _info(mv)
        out.append(ModelVersionInfo(**{**info.__dict__, "aliases": tuple(sorted(aliases.get(info.version, ())))}))
    return sorted(out, key=lambda v: -v.version)


def promote(name: str, version: int, alias: str, who: str, why: str) -> Promotion:
    """Point `alias` (champion or challenger) at `version`, recording who did it and why."""
    name = _check_name(name)
    if alias not in ALIASES:
        raise InputError("llmops.registry.bad_alias", value=str(alias)[:50], choices=", ".join(ALIASES))
    who = " ".join(str(who or "").split())
    why = " ".join(str(why or "").split())
    if not who or len(who) > MAX_WHO:
        raise InputError("llmops.registry.no_who", limit=MAX_WHO)
    if not why or len(why) > MAX_WHY:
        raise InputError("llmops.registry.no_why", limit=MAX_WHY)
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise InputError("llmops.registry.no_version", name=name, version=str(version)[:20]) from None
    mlflow_client, uri = _writable()
    no_version = UserError("llmops.registry.no_version", name=name, version=version)
    _call(uri, lambda: mlflow_client.get_model_version(name, str(version)), no_version)
    rm = _call(uri, lambda: mlflow_client.get_registered_model(name), no_version)
    before = rm.aliases.get(alias)
    replaced = int(before) if before is not None else None
    at = datetime.now(UTC)
    _call(uri, lambda: mlflow_client.set_registered_model_alias(name, alias, str(version)))
    stamp = at.isoformat(timespec="seconds")
    for key, value in {"by": who, "why": why, "at": stamp, "replaced": "" if replaced is None else replaced}.items():
        _call(
            uri,
            lambda k=key, v=value: mlflow_client.set_model_version_tag(
                name, str(version), f"llmlab.promoted.{alias}.{k}", str(v)
            ),
        )
    entry = {"version": version, "alias": alias, "who": who, "why": why, "at": stamp, "replaced": replaced}
    ms = int(at.timestamp() * 1000)
    while f"{HISTORY_TAG}{ms}" in (rm.tags or {}):  # two promotions in the same millisecond
        ms += 1
    _call(
        uri,
        lambda: mlflow_client.set_registered_model_tag(
            name, f"{HISTORY_TAG}{ms}", json.dumps(entry, ensure_ascii=False)
        ),
    )
    return Promotion(name, version, alias, who, why, at, replaced)


def promotions(name: str) -> list[Promotion]:
    """Every promotion of `name`, oldest first."""
    name = _check_name(name)
    uri = tracking_uri()
    mlflow_client = _readable(uri)
    if mlflow_client is None:
        raise UserError("llmops.registry.no_model", name=name, uri=uri)
    rm = _call(
        uri, lambda: mlflow_client.get_registered_model(name), UserError("llmops.registry.no_model", name=name, uri=uri)
    )
    out = []
    for key, value in sorted((rm.tags or {}).items(), key=lambda kv: kv[0]):
        if not key.startswith(HISTORY_TAG):
            continue
        try:
            e = json.loads(value)
            out.append(
                Promotion(
                    name,
                    int(e["version"]),
                    e["alias"],
                    e["who"],
                    e["why"],
                    datetime.fromisoformat(e["at"]),
                    None if e.get("replaced") is None else int(e["replaced"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # a hand-edited tag: skipped, not fatal
    return sorted(out, key=lambda p: p.at)


def is_model_uri(text: Any) -> bool:
    return isinstance(text, str) and text.startswith("models:/")


def resolve(uri_text: str) -> ModelVersionInfo:
    """The version `models:/<name>@<alias>` or `models:/<name>/<version>` names now."""
    match = _URI.match(uri_text.strip()) if isinstance(uri_text, str) else None
    if match is None:
        raise InputError("llmops.registry.bad_uri", value=str(uri_text)[:200])
    name = _check_name(match["name"])
    uri = tracking_uri()
    mlflow_client = _readable(uri)
    if mlflow_client is None:
        raise UserError("llmops.registry.no_model", name=name, uri=uri)
    if match["alias"]:
        missing = UserError("llmops.registry.no_alias", name=name, alias=match["alias"], uri=uri)
        mv = _call(uri, lambda: mlflow_client.get_model_version_by_alias(name, match["alias"]), missing)
    else:
        missing = UserError("llmops.registry.no_version", name=name, version=match["version"])
        mv = _call(uri, lambda: mlflow_client.get_model_version(name, match["version"]), missing)
    return _info(mv)


def _cache_root() -> Path:
    return get_settings().cache_dir.expanduser() / "llmops" / "registry"


def model_path(uri_text: str) -> Path:
    """A local folder with the files of the version `uri_text` names now (downloaded once per version)."""
    info = resolve(uri_text)
    uri = tracking_uri()
    key = hashlib.sha256(f"{uri}\n{info.source}".encode()).hexdigest()[:10]
    dest = _cache_root() / f"{info.name}-v{info.version}-{key}"
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm bar on the CLI's stderr
        from mlflow.artifacts import download_artifacts

        local = _call(uri, lambda: download_artifacts(artifact_uri=info.source, dst_path=str(tmp), tracking_uri=uri))
        try:
            os.replace(local, dest)  # atomic: another process that got there first keeps its copy
        except OSError:
            if not dest.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


__all__ = [
    "ALIASES",
    "ModelVersionInfo",
    "Promotion",
    "is_model_uri",
    "model_path",
    "model_versions",
    "promote",
    "promotions",
    "register_model",
    "registered_models",
    "resolve",
]
