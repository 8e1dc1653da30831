"""Online serving under load: many clients at once against an OpenAI-compatible server.

`run_load_test` keeps exactly `concurrency` requests in flight (a closed loop: each client sends its next
request when the previous answer arrives) until `requests` answers are in, for each concurrency level, and
reports throughput (completion tokens per second, from the server's `usage`), latency percentiles and errors.

The same code measures the embedded llama.cpp server (default), a vLLM server (`LLMLAB_LLM_BASE_URL`) or any
compatible endpoint. What to expect:
- llama-cpp-python's server runs ONE request at a time (a lock around the model; `--interrupt_requests False`
  makes later requests queue instead of cutting off a streaming one). Throughput stays flat as concurrency
  grows, and latency grows linearly: request n waits for the n - 1 before it.
- vLLM batches every request in flight (continuous batching + PagedAttention), so throughput climbs with
  concurrency until the GPU is saturated, while latency grows slowly.

Safety: only loopback servers unless `allow_remote=True`, never the hosted OpenAI API (it would cost money),
concurrency ≤ 64 and at most 512 requests per level.
"""

from __future__ import annotations

import concurrent.futures as cf
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

import openai

from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.serving.client import MAX_TOKENS_LIMIT, Endpoint, ModelServerError, resolve_endpoint
from engine.serving.llama_server import healthy

__all__ = ["MAX_CONCURRENCY", "MAX_REQUESTS", "PROMPTS", "check_load_test_args", "run_load_test"]

MAX_CONCURRENCY = 64
MAX_REQUESTS = 512
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}

PROMPTS = [
    "What is the capital of France?",
    "Give me three tips for learning a new language.",
    "Explain what a KV cache is in one sentence.",
    "Write a haiku about autumn.",
    "What is 12 times 7?",
    "Name three planets of the solar system.",
    "Why is the sky blue? Answer briefly.",
    "Suggest a name for a small coffee shop.",
    "What does a transformer model do?",
    "List two benefits of regular exercise.",
    "Translate 'good morning' into Spanish.",
    "What is the boiling point of water in Celsius?",
    "Describe a cat in two sentences.",
    "Give an example of a prime number greater than 50.",
    "What is machine learning? Keep it short.",
    "Recommend a book for a long train ride.",
]


@dataclass
class _Outcome:
    ok: bool
    latency_s: float
    completion_tokens: int
    error: str | None = None


def check_load_test_args(concurrency: list[int], requests: int, max_tokens: int) -> None:
    """Raise ValueError with a clear message for impossible or abusive settings."""
    if not concurrency:
        raise InputError("serving.no_concurrency")
    bad = [c for c in concurrency if not 1 <= c <= MAX_CONCURRENCY]
    if bad:
        raise InputError("serving.bad_concurrency", limit=MAX_CONCURRENCY, value=bad)
    if not 1 <= requests <= MAX_REQUESTS:
        raise InputError("serving.bad_requests", limit=MAX_REQUESTS, value=requests)
    if not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise InputError("serving.bad_max_tokens", limit=MAX_TOKENS_LIMIT, value=max_tokens)


def _check_target(ep: Endpoint, allow_remote: bool) -> None:
    host = (urlparse(ep.base_url).hostname or "").lower()
    if "openai.com" in host:
        raise InputError("serving.no_openai_load_test")
    if not allow_remote and host not in LOOPBACK:
        raise InputError("serving.remote_load_test", host=host)
    if not healthy(ep.base_url, timeout=3.0):
        raise ModelServerError("server.down", url=ep.base_url)


class _Target:
    """The endpoint and client shared by the worker threads. If the EMBEDDED server dies mid-test (its owner
    process exited, say), the first request to notice restarts it through ensure_server() and every thread
    moves to the new address; each request is retried at most once, and the restarts are reported."""

    def __init__(self, ep: Endpoint, timeout_s: float):
        self.ep, self.timeout_s = ep, timeout_s
        self.client = self._make_client(ep)
        self.restarts = 0
        self._lock = threading.Lock()

    def _make_client(self, ep: Endpoint) -> openai.OpenAI:
        return openai.OpenAI(base_url=ep.base_url, api_key=ep.api_key, timeout=self.timeout_s, max_retries=0)

    def reconnect(self, failed: Endpoint) -> bool:
        if not failed.local:
            return False
        with self._lock:
            if self.ep.base_url == failed.base_url:  # nobody has moved to a new server yet
                new = resolve_endpoint()  # ensure_server(): a healthy server is kept, a dead one restarted
                if new.base_url != failed.base_url or new.restarted:
                    self.restarts += 1
                self.ep, self.client = new, self._make_client(new)
        return True


def _one_request(target: _Target, prompt: str, max_tokens: int, temperature: float) -> _Outcome:
    t0 = time.perf_counter()
    for attempt in range(2):
        ep, client = target.ep, target.client
        try:
            resp = client.chat.completions.create(
                model=ep.model,
                messages=[{"role": "user", "content": prompt}],
                max_tokens=max_tokens,
                temperature=temperature,
                seed=0,
            )
            tokens = resp.usage.completion_tokens if resp.usage else 0
            return _Outcome(True, time.perf_counter() - t0, int(tokens or 0))
        except openai.APITimeoutError as exc:  # slow, not gone: retrying would only double the wait
            return _Outcome(False, time.perf_counter() - t0, 0, f"{type(exc).__name__}: {str(exc)[:200]}")
        except openai.APIConnectionError as exc:
            if attempt == 0 and _safe_reconnect(target, ep):
                continue
            return _Outcome(False, time.perf_counter() - t0, 0, f"{type(exc).__name__}: {str(exc)[:200]}")
        except Exception as exc:  # every failure is counted and reported, never raised mid-test
            return _Outcome(False, time.perf_counter() - t0, 0, f"{type(exc).__name__}: {str(exc)[:200]}")
    raise AssertionError("unreachable")


def _safe_reconnect(target: _Target, ep: Endpoint) -> bool:
    try:
        return target.reconnect(ep)
    except ModelServerError:
        return False


def _summary(concurrency: int, outcomes: list[_Outcome], wall_s: float, partial: bool, planned: int) -> dict:
    ok = [o for o in outcomes if o.ok]
    lat = sorted(o.latency_s for o in ok)
    tokens = sum(o.completion_tokens for o in ok)
    errors = [o.error for o in outcomes if not o.ok]

    def pct(q: float) -> float | None:
        if not lat:
            return None
        pos = (len(lat) - 1) * q
        lo = int(pos)
        hi = min(lo + 1, len(lat) - 1)
        return lat[lo] + (lat[hi] - lat[lo]) * (pos - lo)

    return {
        "concurrency": concurrency,
        "requests": len(outcomes),
        "planned_requests": planned,
        "completion_tokens": tokens,
        "wall_s": wall_s,
        "tokens_per_s": tokens / wall_s if wall_s > 0 else 0.0,
        "requests_per_s": len(ok) / wall_s if wall_s > 0 else 0.0,
        "p50_s": pct(0.50),
        "p95_s": pct(0.95),
        "mean_s": statistics.fmean(lat) if lat else None,
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:3],
        "partial": partial,
    }


def run_load_test(
    concurrency: list[int],
    requests: int = 16,
    max_tokens: int = 64,
    temperature: float = 0.0,
    prompts: list[str] | None = None,
    allow_remote: bool = False,
    request_timeout_s: float = 300.0,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] = lambda: False,
    on_level: Callable[[dict], None] | None = None,
    warmup: bool = True,
) -> list[dict]:
    """One summary dict per concurrency level (see the module docstring); `on_level` gets each as it finishes.

    Cancelling (should_stop() true, or the progress callback raising Cancelled) stops sending new requests;
    the current level is summarized from the answers already in (marked `partial`) and Cancelled is raised
    with `.partial` holding every summary so far.
    """
    check_load_test_args(concurrency, requests, max_tokens)
    if not 0.0 <= temperature <= 2.0:
        raise InputError("serving.bad_temperature", value=temperature)
    prompts = [p for p in (prompts or PROMPTS) if p.strip()] or PROMPTS
    ep = resolve_endpoint(progress)
    _check_target(ep, allow_remote)
    target = _Target(ep, request_timeout_s)
    if warmup:  # one untimed request, so the first level does not pay for a fresh server's first call
        progress(0.0, "warm-up request")
        _one_request(target, prompts[0], min(max_tokens, 8), temperature)
    results: list[dict] = []
    total = len(concurrency) * requests
    finished_before = 0

    def finish(row: dict) -> None:
        row.update(
            endpoint=target.ep.base_url,
            model=target.ep.model,
            server="embedded llama.cpp" if target.ep.local else "external",
        )
        results.append(row)
        if on_level:
            on_level(row)

    for c in concurrency:
        outcomes: list[_Outcome] = []
        restarts_before = target.restarts
        pool = cf.ThreadPoolExecutor(max_workers=c, thread_name_prefix=f"load-{c}")
        completed = False
        t0 = time.perf_counter()
        try:
            futures = {
                pool.submit(_one_request, target, prompts[i % len(prompts)], max_tokens, temperature)
                for i in range(requests)
            }
            pending = set(futures)
            while pending:
                done, pending = cf.wait(pending, timeout=0.25, return_when=cf.FIRST_COMPLETED)
                outcomes.extend(f.result() for f in done)
                progress(
                    (finished_before + len(outcomes)) / total, f"concurrency {c}: {len(outcomes)}/{requests} answers"
                )
                if should_stop():
                    raise Cancelled("stopped")
            completed = True
        except Cancelled as exc:
            finish(
                {
                    **_summary(c, outcomes, time.perf_counter() - t0, True, requests),
                    "server_restarts": target.restarts - restarts_before,
                }
            )
            exc.partial = results  # type: ignore[attr-defined]
            raise
        finally:
            # on any interruption: drop queued requests and do not wait for those in flight
            pool.shutdown(wait=completed, cancel_futures=True)
        finish(
            {
                **_summary(c, outcomes, time.perf_counter() - t0, False, requests),
                "server_restarts": target.restarts - restarts_before,
            }
        )
        finished_before += requests
    progress(1.0, "done")
    return results
