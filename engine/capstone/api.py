"""The capstone's REST API: FastAPI around llama.cpp (llama-cpp-python's `Llama`), run by uvicorn.

What a small production API needs, and nothing hidden:
- **OpenAPI** schema at `/openapi.json` and interactive docs at `/docs` (FastAPI generates both from the types; the
  Swagger UI files come from the `fastapi-offline` package, not a CDN, so the docs work offline);
- a **bearer token** on every model endpoint (401 without one, 403 with a wrong one; compared in constant time);
- a **request size limit** (413) enforced on the bytes actually received, so a client that lies in Content-Length
  or streams a chunked body cannot make the server buffer megabytes;
- a **rate limit** per token (429 with Retry-After), a sliding window of 60 seconds;
- **validation** by pydantic (422 with the field that is wrong) — malformed JSON never reaches the model;
- one model call at a time (a lock: a `Llama` context is not thread-safe), answered with timing and token counts;
- the run's artifacts (the 4-bit GGUF, the LoRA adapter, the CSVs) streamed from disk at `/v1/artifacts/{name}`.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field

from engine.capstone.sft import messages

MAX_QUESTION_CHARS = 1000


@dataclass(frozen=True)
class ApiLimits:
    max_body_bytes: int = 8_192  # a question of 1,000 Korean characters is ~3 kB of JSON
    requests_per_minute: int = 60
    max_tokens: int = 256
    n_ctx: int = 1024


class AnswerRequest(BaseModel):
    question: str = Field(..., min_length=1, max_length=MAX_QUESTION_CHARS, examples=["도서관은 몇 시에 문을 닫나요?"])
    max_tokens: int = Field(96, ge=1, le=256)


class AnswerResponse(BaseModel):
    answer: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float


class BodyLimit:
    """ASGI middleware: 413 as soon as a request body passes `limit` bytes (declared or actually received)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await _too_large(send, self.limit)
        # Read the body here, counting, before the app sees any of it (at most `limit` bytes are ever held), then
        # replay it. Raising inside the app's own read would surface as FastAPI's generic 400, not a 413.
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                return await _too_large(send, self.limit)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


async def _too_large(send, limit: int) -> None:
    body = json.dumps({"detail": f"request body larger than {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """At most `per_minute` requests per key in any 60-second window."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.per_minute, self.clock = per_minute, clock
        self.hits: dict[str, deque] = defaultdict(deque)
        self.lock = threading.Lock()

    def check(self, key: str) -> float | None:
        """None if allowed (and counted), else the seconds until the next request would be allowed."""
        now = self.clock()
        with self.lock:
            q = self.hits[key]
            while q and now - q[0] >= 60:
                q.popleft()
            if len(q) >= self.per_minute:
                return round(60 - (now - q[0]), 1)
            q.append(now)
            return None


def create_app(model_path: Path, token: str, limits: ApiLimits = ApiLimits(), artifacts: Path | None = None) -> FastAPI:
    """The app; the model loads on the first request (or `app.state.load()`), so /health answers at once."""
    if not token:
        raise ValueError("the API needs a bearer token")
    # fastapi-offline: FastAPI with the Swagger UI and ReDoc files served by the app itself; plain FastAPI's /docs
    # loads them from a CDN, which leaves the page blank on an offline laptop
    app = FastAPIOffline(
        title="LLM Practice Lab · capstone FAQ API",
        version="1.0",
        description="A LoRA-tuned, 4-bit chat model served by llama.cpp. Send `Authorization: Bearer <token>`.",
    )
    app.add_middleware(BodyLimit, limit=limits.max_body_bytes)
    bearer = HTTPBearer(auto_error=False)
    limiter = RateLimiter(limits.requests_per_minute)
    lock = threading.Lock()
    state: dict = {"llm": None}
    artifacts = artifacts or model_path.parent

    def load():
        from llama_cpp import Llama

        with lock:
            if state["llm"] is None:
                state["llm"] = Llama(
                    str(model_path), n_ctx=limits.n_ctx, n_threads=os.cpu_count(), seed=0, verbose=False
                )
        return state["llm"]

    app.state.load = load

    def authorized(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
        if creds is None or creds.scheme.lower() != "bearer":
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        if not secrets.compare_digest(creds.credentials.encode(), token.encode()):
            raise HTTPException(403, "wrong token")
        wait = limiter.check(creds.credentials)
        if wait is not None:
            raise HTTPException(
                429,
                f"rate limit: {limits.requests_per_minute} requests per minute",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        return creds.credentials

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": model_path.name, "loaded": state["llm"] is not None}

    @app.post("/v1/answer", response_model=AnswerResponse)
    def answer(req: AnswerRequest, _: str = Depends(authorized)) -> AnswerResponse:
        question = " ".join(req.question.split())
        if not question:
            raise HTTPException(422, "question is blank")
        llm = load()
        start = time.perf_counter()
        with lock:
            # a fresh KV cache per request: reusing the previous prompt's prefix changes the floating-point order of
            # the work, and greedy answers then differ from call to call (measured); the prompt is ~50 tokens
            llm.reset()
            out = llm.create_chat_completion(
                messages(question), max_tokens=min(req.max_tokens, limits.max_tokens), temperature=0.0
            )
        usage = out.get("usage", {})
        return AnswerResponse(
            answer=(out["choices"][0]["message"]["content"] or "").strip(),
            model=model_path.name,
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
            seconds=round(time.perf_counter() - start, 3),
        )

    @app.get("/v1/artifacts")
    def list_artifacts(_: str = Depends(authorized)) -> list[dict]:
        return [{"name": p.name, "bytes": p.stat().st_size} for p in sorted(artifacts.iterdir()) if p.is_file()]

    @app.get("/v1/artifacts/{name}")
    def artifact(name: str, _: str = Depends(authorized)):
        path = (artifacts / name).resolve()
        if path.parent != artifacts.resolve() or not path.is_file():  # no ../ and no sub-folders
            raise HTTPException(404, "no such artifact")
        return FileResponse(path, filename=path.name)

    return app
