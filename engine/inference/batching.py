"""Batching for LLM serving: static, dynamic and continuous (iteration-level) batching.

A decode step of a small batch costs about as much as a step of one sequence, because the time goes into
reading the weights, not into arithmetic. Batching spreads that cost over more requests. How requests are put
into batches decides who waits:

    static      fixed batches of `max_batch` in arrival order; a batch starts only when it is full (or no more
                requests will come) and runs until its LONGEST member finishes; nobody joins or leaves early.
    dynamic     (Triton, TF-Serving) a batch starts when it is full OR the oldest waiting request has waited
                `max_wait_s`; still runs to completion of its longest member.
    continuous  (Orca, OSDI 2022; vLLM) scheduling per iteration: after every decode step finished requests
                leave and waiting ones join (their prefill runs in that step).

`measure_costs` times the real `chat` model (prefill of n tokens, one decode step at batch b, with a KV
cache) and fits straight lines; `simulate` replays a workload of requests arriving over time through each
policy using those costs. The schedule is a SIMULATION driven by MEASURED costs; `real_static_batch` runs a
real padded batch through transformers so the cost model can be checked against a real run, and
`batched_generate` is the real offline engine used by the serving section.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from dataclasses import dataclass, field

import torch

from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import InputError

__all__ = [
    "POLICIES",
    "CostModel",
    "Request",
    "SimResult",
    "batched_generate",
    "default_costs",
    "make_workload",
    "measure_costs",
    "real_static_batch",
    "simulate",
    "snapshot",
]

POLICIES = ("static", "dynamic", "continuous")


@dataclass(frozen=True)
class CostModel:
    """Seconds per model call: prefill(n) = a + b·n (n prompt tokens, summed over the batch, padding
    included), decode(B) = c + d·B (one new token for each of B sequences)."""

    prefill_base_s: float
    prefill_per_token_s: float
    decode_base_s: float
    decode_per_seq_s: float
    source: str  # what produced these numbers (model, device, when) — shown next to every simulation
    samples: tuple[dict, ...] = ()

    def prefill(self, n_tokens: int) -> float:
        return self.prefill_base_s + self.prefill_per_token_s * n_tokens if n_tokens > 0 else 0.0

    def decode(self, batch: int) -> float:
        return self.decode_base_s + self.decode_per_seq_s * batch if batch > 0 else 0.0


def default_costs() -> CostModel:
    """Costs measured once during development: SmolLM2-135M (fp32, eager attention) on a busy 2-core CPU with
    one torch thread (`python -m engine batch-sim --measure --threads 1`). The page labels them as such and
    replaces them with this machine's figures on request."""
    source = "reference: measured in development (SmolLM2-135M, busy 2-core CPU, 1 thread)"
    return CostModel(0.262, 0.00776, 0.140, 0.0360, source)


def _fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares intercept and slope, both clamped at ≥ 0 (a negative cost is noise, not physics)."""
    if len(set(xs)) < 2:
        return max(0.0, statistics.fmean(ys)), 0.0
    slope, intercept = statistics.linear_regression(xs, ys)
    if slope < 0:
        return max(0.0, statistics.fmean(ys)), 0.0
    if intercept < 0:
        return 0.0, statistics.fmean(ys) / statistics.fmean(xs)
    return intercept, slope


def measure_costs(
    lm,
    prompt_lens: tuple[int, ...] = (16, 64, 128),
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8),
    repeats: int = 3,
    context: int = 32,
    progress: ProgressFn = null_progress,
    should_stop=lambda: False,
) -> CostModel:
    """Time the real model: prefill of n tokens (batch 1) and one decode step at batch b with a KV cache of
    `context` tokens; the fastest of `repeats` runs per point (on a shared CPU, noise only ever adds time),
    fitted with straight lines."""
    from transformers import DynamicCache

    if not 1 <= repeats <= 10 or not prompt_lens or not batch_sizes:
        raise InputError("batching.need_inputs")
    if max(prompt_lens) > 1024 or max(batch_sizes) > 64 or min(prompt_lens) < 1 or min(batch_sizes) < 1:
        raise InputError("batching.bad_sizes")
    model = lm.model
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(0)
    samples: list[dict] = []
    steps = len(prompt_lens) + len(batch_sizes)
    with torch.no_grad():
        model(torch.randint(0, vocab, (1, 8), generator=gen))  # warm-up
        for i, n in enumerate(prompt_lens):
            if should_stop():
                raise Cancelled("stopped")
            progress(i / steps, f"prefill {n} tokens")
            ids = torch.randint(0, vocab, (1, n), generator=gen)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                model(ids, use_cache=True)
                times.append(time.perf_counter() - t0)
            samples.append({"kind": "prefill", "x": n, "seconds": min(times)})
        for j, b in enumerate(batch_sizes):
            if should_stop():
                raise Cancelled("stopped")
            progress((len(prompt_lens) + j) / steps, f"decode step at batch {b}")
            cache = DynamicCache(config=model.config)
            model(torch.randint(0, vocab, (b, context), generator=gen), past_key_values=cache, use_cache=True)
            times = []
            for _ in range(repeats):
                step = torch.randint(0, vocab, (b, 1), generator=gen)
                t0 = time.perf_counter()
                model(step, past_key_values=cache, use_cache=True)
                times.append(time.perf_counter() - t0)
            samples.append({"kind": "decode", "x": b, "seconds": min(times)})
    progress(1.0, "fitted")
    pre = [s for s in samples if s["kind"] == "prefill"]
    dec = [s for s in samples if s["kind"] == "decode"]
    a, b_ = _fit_line([s["x"] for s in pre], [s["seconds"] for s in pre])
    c, d = _fit_line([s["x"] for s in dec], [s["seconds"] for s in dec])
    source = f"measured on {getattr(lm, 'role', '?')} ({lm.device}), {time.strftime('%H:%M:%S')}"
    return CostModel(a, b_, c, d, source, tuple(samples))


# ---------------------------------------------------------------------------------------------------------
# Workload and simulation
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    id: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int


def make_workload(
    n: int = 12,
    rate_per_s: float = 0.5,
    prompt_range: tuple[int, int] = (8, 64),
    output_range: tuple[int, int] = (4, 48),
    seed: int = 0,
) -> list[Request]:
    """n requests with Poisson arrivals (exponential gaps, mean 1/rate) and uniform prompt/output lengths."""
    if not 1 <= n <= 200:
        raise InputError("batching.bad_request_count")
    if not 0 < rate_per_s <= 1000:
        raise InputError("batching.bad_rate")
    for lo, hi in (prompt_range, output_range):
        if not 1 <= lo <= hi <= 4096:
            raise InputError("batching.bad_length_range")
    rng = random.Random(seed)
    t = 0.0
    out = []
    for i in range(n):
        out.append(Request(i, round(t, 4), rng.randint(*prompt_range), rng.randint(*output_range)))
        t += rng.expovariate(rate_per_s)
    return out


@dataclass
class SimResult:
    policy: str
    requests: list[Request]
    start: dict[int, float] = field(default_factory=dict)  # when the request's batch/prefill began
    first_token: dict[int, float] = field(default_factory=dict)
    done: dict[int, float] = field(default_factory=dict)  # when its last token was produced
    returned: dict[int, float] = field(default_factory=dict)  # when the caller got the answer
    segments: list[dict] = field(default_factory=list)  # Gantt rows: request, phase, start, end
    events: list[tuple[float, str]] = field(default_factory=list)
    busy_slot_steps: int = 0  # decode slots that produced a useful token
    total_slot_steps: int = 0  # decode slots paid for (padding included)

    def metrics(self) -> dict:
        lat = [self.returned[r.id] - r.arrival_s for r in self.requests]
        ttft = [self.first_token[r.id] - r.arrival_s for r in self.requests]
        makespan = max(self.returned.values()) - min(r.arrival_s for r in self.requests)
        tokens = sum(r.output_tokens for r in self.requests)
        return {
            "policy": self.policy,
            "makespan_s": makespan,
            "tokens_per_s": tokens / makespan if makespan > 0 else 0.0,
            "mean_latency_s": statistics.fmean(lat),
            "p50_latency_s": _pct(lat, 50),
            "p95_latency_s": _pct(lat, 95),
            "mean_ttft_s": statistics.fmean(ttft),
            "slot_utilization": self.busy_slot_steps / self.total_slot_steps if self.total_slot_steps else 1.0,
        }


def _pct(values: list[float], q: float) -> float:
    """Percentile with linear interpolation (numpy's default), without numpy."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _run_to_completion(res: SimResult, batch: list[Request], t: float, cost: CostModel) -> float:
    """Static/dynamic: one padded prefill, then decode steps until the longest member is done."""
    b = len(batch)
    longest_prompt = max(r.prompt_tokens for r in batch)
    t_pre = cost.prefill(b * longest_prompt)  # padded to the longest prompt
    res.events.append((t, f"batch of {b} starts: {[r.id for r in batch]}"))
    for r in batch:
        res.start[r.id] = t
        res.first_token[r.id] = t + t_pre  # prefill yields the first token
        res.segments.append({"request": r.id, "phase": "prefill", "start": t, "end": t + t_pre})
    t += t_pre
    steps = max(r.output_tokens for r in batch) - 1
    step_cost = cost.decode(b)
    for r in batch:
        end_own = t + (r.output_tokens - 1) * step_cost
        res.done[r.id] = end_own
        res.segments.append({"request": r.id, "phase": "decode", "start": t, "end": end_own})
        if r.output_tokens - 1 < steps:  # finished, but its slot keeps running as padding
            res.segments.append({"request": r.id, "phase": "padding", "start": end_own, "end": t + steps * step_cost})
    res.busy_slot_steps += sum(r.output_tokens - 1 for r in batch)
    res.total_slot_steps += b * steps
    t += steps * step_cost
    for r in batch:
        res.returned[r.id] = t  # a static batch returns all answers together
    res.events.append((t, f"batch {[r.id for r in batch]} returns"))
    return t


def simulate(
    requests: list[Request], policy: str, cost: CostModel, max_batch: int = 4, max_wait_s: float = 0.5
) -> SimResult:
    """Replay `requests` through one batching policy with the given costs (a discrete-event SIMULATION)."""
    if policy not in POLICIES:
        raise InputError("batching.unknown_policy", choices=POLICIES, value=policy)
    if not 1 <= max_batch <= 256:
        raise InputError("batching.bad_max_batch")
    if max_wait_s < 0:
        raise InputError("batching.bad_max_wait")
    if not requests:
        raise InputError("batching.no_requests")
    reqs = sorted(requests, key=lambda r: (r.arrival_s, r.id))
    res = SimResult(policy, reqs)
    for r in reqs:
        res.events.append((r.arrival_s, f"request {r.id} arrives ({r.prompt_tokens} prompt, {r.output_tokens} out)"))
    t = 0.0
    if policy == "static":
        for i in range(0, len(reqs), max_batch):
            batch = reqs[i : i + max_batch]
            t = max(t, batch[-1].arrival_s)  # wait until the batch is full (the last one may be short)
            for r in batch:
                res.segments.append({"request": r.id, "phase": "waiting", "start": r.arrival_s, "end": t})
            t = _run_to_completion(res, batch, t, cost)
    elif policy == "dynamic":
        queue = list(reqs)
        while queue:
            oldest = queue[0]
            t = max(t, oldest.arrival_s)
            arrived = [r for r in queue if r.arrival_s <= t]
            if len(arrived) < max_batch:
                # wait for the batch to fill, or for the oldest request's deadline
                deadline = oldest.arrival_s + max_wait_s
                fill_time = queue[max_batch - 1].arrival_s if len(queue) >= max_batch else math.inf
                t = max(t, min(deadline, fill_time))
                arrived = [r for r in queue if r.arrival_s <= t]
            batch = arrived[:max_batch]
            for r in batch:
                res.segments.append({"request": r.id, "phase": "waiting", "start": r.arrival_s, "end": t})
                queue.remove(r)
            t = _run_to_completion(res, batch, t, cost)
    else:
        _continuous(res, reqs, cost, max_batch)
    res.events.sort(key=lambda e: e[0])
    return res


def _continuous(res: SimResult, reqs: list[Request], cost: CostModel, max_batch: int) -> None:
    """Iteration-level scheduling: each iteration = prefill of newly admitted requests + one decode step."""
    waiting = list(reqs)
    running: dict[int, int] = {}  # request id -> tokens still to generate
    by_id = {r.id: r for r in reqs}
    t = 0.0
    while waiting or running:
        if not running and waiting and waiting[0].arrival_s > t:
            t = waiting[0].arrival_s  # idle until the next arrival
        joiners = []
        while waiting and waiting[0].arrival_s <= t and len(running) + len(joiners) < max_batch:
            joiners.append(waiting.pop(0))
        t_pre = cost.prefill(sum(r.prompt_tokens for r in joiners))  # no padding: tokens are packed
        decoding = list(running)
        t_dec = cost.decode(len(decoding))
        if joiners:
            res.events.append((t, f"join: {[r.id for r in joiners]} (running {len(decoding)})"))
        for r in joiners:
            res.segments.append({"request": r.id, "phase": "waiting", "start": r.arrival_s, "end": t})
            res.start[r.id] = t
            res.segments.append({"request": r.id, "phase": "prefill", "start": t, "end": t + t_pre})
        step_end = t + t_pre + t_dec
        for rid in decoding:  # every running request gains one token this iteration
            res.segments.append({"request": rid, "phase": "decode", "start": t, "end": step_end})
            running[rid] -= 1
        res.busy_slot_steps += len(decoding)
        res.total_slot_steps += len(decoding)
        for r in joiners:
            res.first_token[r.id] = t + t_pre
            running[r.id] = r.output_tokens - 1
        t = step_end
        for rid in [rid for rid, left in running.items() if left <= 0]:
            del running[rid]
            res.done[rid] = res.returned[rid] = t
            res.events.append((t, f"request {rid} done ({by_id[rid].output_tokens} tokens) and leaves"))
    # merge consecutive decode segments of the same request for drawing
    merged: list[dict] = []
    for seg in sorted(res.segments, key=lambda s: (s["request"], s["start"])):
        last = merged[-1] if merged else None
        if (
            last
            and last["request"] == seg["request"]
            and last["phase"] == seg["phase"] == "decode"
            and abs(last["end"] - seg["start"]) < 1e-12
        ):
            last["end"] = seg["end"]
        else:
            merged.append(dict(seg))
    res.segments = merged


def snapshot(res: SimResult, t: float) -> list[dict]:
    """Status of every request at time t: not yet arrived / waiting / prefill / decode / padding / done."""
    rows = []
    for r in res.requests:
        status = "not arrived"
        if t >= r.arrival_s:
            status = "waiting"
        for seg in res.segments:
            if seg["request"] == r.id and seg["start"] <= t < seg["end"] and seg["phase"] != "waiting":
                status = seg["phase"]
        if r.id in res.returned and t >= res.returned[r.id]:
            status = "done"
        rows.append(
            {
                "request": r.id,
                "arrival_s": r.arrival_s,
                "prompt": r.prompt_tokens,
                "output": r.output_tokens,
                "status": status,
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------------------
# Real runs
# ---------------------------------------------------------------------------------------------------------


def real_static_batch(
    lm, batch: int = 4, prompt_tokens: int = 32, new_tokens: int = 16, cost: CostModel | None = None
) -> dict:
    """A real padded batch through `model.generate` (fixed length: min_new_tokens = max_new_tokens), timed,
    next to the cost model's prediction for the same batch: prefill(b·n) + (new - 1)·decode(b)."""
    if not 1 <= batch <= 32 or not 1 <= prompt_tokens <= 512 or not 1 <= new_tokens <= 128:
        raise InputError("batching.bad_settings")
    model = lm.model
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (batch, prompt_tokens), generator=gen)
    kwargs = dict(
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        pad_token_id=lm.tokenizer.pad_token_id or 0,
    )
    with torch.no_grad():
        model.generate(
            ids[:, :4],
            attention_mask=torch.ones_like(ids[:, :4]),
            max_new_tokens=2,
            pad_token_id=kwargs["pad_token_id"],
        )  # warm-up
        t0 = time.perf_counter()
        model.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)
        seconds = time.perf_counter() - t0
    row = {"batch": batch, "prompt_tokens": prompt_tokens, "new_tokens": new_tokens, "measured_s": seconds}
    if cost is not None:
        predicted = cost.prefill(batch * prompt_tokens) + (new_tokens - 1) * cost.decode(batch)
        row.update(predicted_s=predicted, measured_over_predicted=seconds / predicted, costs=cost.source)
    return row


def batched_generate(
    lm,
    prompts: list[str],
    max_new_tokens: int = 32,
    batch_size: int = 8,
    use_chat_template: bool = True,
    progress: ProgressFn = null_progress,
    should_stop=lambda: False,
) -> dict:
    """Offline serving: every prompt through the in-process engine, `batch_size` at a time (left-padded,
    greedy). Returns the answers, wall time and generated tokens per second (padding not counted)."""
    if not prompts or len(prompts) > 64:
        raise InputError("batching.bad_prompt_count")
    if not 1 <= max_new_tokens <= 256 or not 1 <= batch_size <= 64:
        raise InputError("batching.bad_generation")
    tok, model = lm.tokenizer, lm.model
    texts = []
    for p in prompts:
        if not p.strip():
            raise InputError("batching.empty_prompt")
        if use_chat_template and getattr(tok, "chat_template", None):
            texts.append(
                tok.apply_chat_template(
                    [{"role": "user", "content": p[:4000]}], tokenize=False, add_generation_prompt=True
                )
            )
        else:
            texts.append(p[:4000])
    answers: list[str] = []
    generated = 0
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    start = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        if should_stop():
            raise Cancelled("stopped")
        progress(i / len(texts), f"batch {i // batch_size + 1} of {math.ceil(len(texts) / batch_size)}")
        enc = tok(
            texts[i : i + batch_size], return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
        )
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
        new = out[:, enc.input_ids.shape[1] :]
        for row in new:
            ids = row.tolist()
            n = next((j + 1 for j, x in enumerate(ids) if x == tok.eos_token_id), len(ids))
            generated += n
            answers.append(tok.decode(ids[:n], skip_special_tokens=True))
    seconds = time.perf_counter() - start
    progress(1.0, "done")
    return {
        "answers": answers,
        "seconds": seconds,
        "generated_tokens": generated,
        "tokens_per_s": generated / seconds if seconds > 0 else 0.0,
        "batch_size": batch_size,
        "prompts": len(prompts),
    }
