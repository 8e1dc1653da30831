"""PagedAttention: the KV cache in fixed-size blocks, the way an operating system pages memory.

Kwon et al., "Efficient Memory Management for Large Language Model Serving with PagedAttention", SOSP 2023
(arXiv:2309.06180) — the paper behind vLLM. Systems before it stored each request's KV cache in one contiguous
chunk sized for the longest possible output, so most of that chunk sat empty. PagedAttention splits the cache
into blocks of `block_size` tokens; a per-sequence *block table* maps logical block i to any free physical
block, blocks are allocated only when a token needs one, and sequences that share a prefix (parallel sampling,
beam search) share the physical blocks, copying a block only when one of them writes to it (copy-on-write).

    BlockManager           the simulated block manager: allocate, append, fork, copy-on-write, free, swap
    scenario_steps         a step-by-step story (two requests, parallel sampling, preemption) for the page
    allocation_usage       KV memory usage of contiguous (Max/Pow2/Oracle, as in the paper) vs paged allocation
    paged_attention        attention that reads K and V through a block table (tested equal to contiguous)
    real_kv_check          the same check on the real KV cache of `chat`

The block manager is a SIMULATION of vLLM's bookkeeping (no GPU memory is allocated); `paged_attention` and
`real_kv_check` are real computations.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from engine.core.textinput import InputError

__all__ = [
    "PAPER_FIG2",
    "BlockManager",
    "OutOfBlocks",
    "allocation_usage",
    "kv_bytes_per_token",
    "paged_attention",
    "real_kv_check",
    "scatter_to_blocks",
    "scenario_steps",
    "synthetic_lengths",
]

# Fig. 2 of the paper: average share of KV cache memory (%) during the §6.2 experiment (OPT-13B, ShareGPT).
# "Orca (Max)" reserves 2048 slots per request, "Pow2" at most 2× the true output, "Oracle" exactly the output.
PAPER_FIG2 = {
    "Orca (Max)": {"token_states": 20.4, "reservation": 13.3, "internal_frag": 57.3, "external_frag": 8.9},
    "Orca (Pow2)": {"token_states": 26.8, "reservation": 17.9, "internal_frag": 13.6, "external_frag": 41.6},
    "Orca (Oracle)": {"token_states": 38.2, "reservation": 25.2, "internal_frag": 0.0, "external_frag": 36.6},
    "vLLM": {"token_states": 96.3, "reservation": 0.0, "internal_frag": 3.7, "external_frag": 0.0},
}
PAPER_CITATION = (
    "Kwon et al., Efficient Memory Management for Large Language Model Serving with PagedAttention, "
    "SOSP 2023, arXiv:2309.06180, Fig. 2"
)
# Mean prompt/output lengths of the two traces in the paper (Fig. 11).
PAPER_TRACES = {"ShareGPT": (161.31, 337.99), "Alpaca": (19.31, 58.45)}


class OutOfBlocks(RuntimeError):
    """No free physical block: the scheduler must preempt (swap out or recompute) a sequence."""


@dataclass
class BlockManager:
    """vLLM-style block manager over `num_blocks` GPU blocks and `num_cpu_blocks` CPU (swap) blocks.

    Invariants (checked by `check()` and the tests):
    - a physical block is either free or has ref_count ≥ 1, never both;
    - ref_count of a block == number of block-table entries pointing at it;
    - a sequence of length n owns exactly ceil(n / block_size) table entries;
    - a block with ref_count > 1 is never written (copy-on-write happens first).
    """

    num_blocks: int
    block_size: int = 4
    num_cpu_blocks: int = 0
    ref_count: list[int] = field(default_factory=list)
    filled: list[int] = field(default_factory=list)  # tokens stored in each physical block (for drawing)
    tables: dict[str, list[int]] = field(default_factory=dict)  # seq -> physical blocks, in logical order
    lengths: dict[str, int] = field(default_factory=dict)  # seq -> tokens
    swapped: dict[str, list[int]] = field(default_factory=dict)  # seq -> CPU blocks while preempted
    cpu_ref: list[int] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    copies: int = 0  # copy-on-write block copies so far

    def __post_init__(self) -> None:
        if self.num_blocks <= 0 or self.block_size <= 0 or self.num_cpu_blocks < 0:
            raise InputError("paged.bad_blocks")
        if self.num_blocks > 4096:
            raise InputError("paged.too_many_blocks")
        self.ref_count = [0] * self.num_blocks
        self.filled = [0] * self.num_blocks
        self.cpu_ref = [0] * self.num_cpu_blocks

    # -- bookkeeping -----------------------------------------------------------------------------------------
    @property
    def free_blocks(self) -> list[int]:
        return [b for b, r in enumerate(self.ref_count) if r == 0]

    def _take(self) -> int:
        free = self.free_blocks
        if not free:
            raise OutOfBlocks("no free KV block")
        b = free[0]  # lowest free block: makes the pictures reproducible
        self.ref_count[b] = 1
        self.filled[b] = 0
        return b

    def _release(self, b: int) -> None:
        self.ref_count[b] -= 1
        if self.ref_count[b] == 0:
            self.filled[b] = 0

    def blocks_needed(self, n_tokens: int) -> int:
        return math.ceil(n_tokens / self.block_size)

    # -- the operations vLLM's scheduler uses --------------------------------------------------------------
    def allocate(self, seq: str, n_tokens: int) -> list[int]:
        """Blocks for a new sequence's prompt (all or nothing)."""
        if seq in self.tables or seq in self.swapped:
            raise InputError("paged.sequence_exists", seq=seq)
        if n_tokens <= 0:
            raise InputError("paged.empty_prompt")
        need = self.blocks_needed(n_tokens)
        if need > len(self.free_blocks):
            raise OutOfBlocks(f"{seq}: needs {need} blocks, {len(self.free_blocks)} free")
        table = [self._take() for _ in range(need)]
        for i, b in enumerate(table):
            self.filled[b] = min(self.block_size, n_tokens - i * self.block_size)
        self.tables[seq], self.lengths[seq] = table, n_tokens
        self.log.append(f"allocate {seq}: {n_tokens} tokens -> blocks {table}")
        return table

    def append(self, seq: str) -> str:
        """Room for one more token; returns 'slot' (fits in the last block), 'new' (new block) or 'cow'."""
        table, n = self.tables[seq], self.lengths[seq]
        if n % self.block_size == 0:  # last block full (or none): a fresh block
            table.append(self._take())
            kind = "new"
        elif self.ref_count[table[-1]] > 1:  # shared last block: copy before writing (copy-on-write)
            old = table[-1]
            new = self._take()
            self.filled[new] = self.filled[old]
            self._release(old)
            table[-1] = new
            self.copies += 1
            kind = "cow"
        else:
            kind = "slot"
        self.filled[table[-1]] += 1
        self.lengths[seq] = n + 1
        if kind != "slot":
            self.log.append(f"append {seq}: {'new block' if kind == 'new' else 'copy-on-write'} -> {table[-1]}")
        return kind

    def fork(self, parent: str, child: str) -> None:
        """A new sequence sharing every block of `parent` (parallel sampling, beam search): no copy yet."""
        if child in self.tables:
            raise InputError("paged.sequence_exists", seq=child)
        self.tables[child] = list(self.tables[parent])
        self.lengths[child] = self.lengths[parent]
        for b in self.tables[child]:
            self.ref_count[b] += 1
        self.log.append(f"fork {parent} -> {child}: shares blocks {self.tables[child]}")

    def free(self, seq: str) -> None:
        for b in self.tables.pop(seq):
            self._release(b)
        self.lengths.pop(seq)
        self.log.append(f"free {seq}")

    def swap_out(self, seq: str) -> None:
        """Preempt `seq`: copy its blocks to CPU memory and free the GPU blocks (vLLM's 'swapping')."""
        table = self.tables[seq]
        if any(self.ref_count[b] > 1 for b in table):
            raise InputError("paged.swap_shared", seq=seq)
        free_cpu = [b for b, r in enumerate(self.cpu_ref) if r == 0]
        if len(free_cpu) < len(table):
            raise OutOfBlocks(f"{seq}: not enough CPU blocks to swap out; recompute instead")
        cpu = free_cpu[: len(table)]
        for b in cpu:
            self.cpu_ref[b] = 1
        for b in table:
            self._release(b)
        self.swapped[seq] = cpu
        del self.tables[seq]
        self.log.append(f"swap out {seq}: GPU blocks {table} -> CPU blocks {cpu}")

    def swap_in(self, seq: str) -> None:
        cpu = self.swapped[seq]
        if len(cpu) > len(self.free_blocks):
            raise OutOfBlocks(f"{seq}: needs {len(cpu)} blocks to swap in")
        n = self.lengths[seq]
        table = [self._take() for _ in cpu]
        for i, b in enumerate(table):
            self.filled[b] = min(self.block_size, n - i * self.block_size)
        for b in cpu:
            self.cpu_ref[b] = 0
        del self.swapped[seq]
        self.tables[seq] = table
        self.log.append(f"swap in {seq}: CPU blocks {cpu} -> GPU blocks {table}")

    # -- views ----------------------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise AssertionError if an invariant is broken."""
        counts = [0] * self.num_blocks
        for seq, table in self.tables.items():
            assert len(table) == self.blocks_needed(self.lengths[seq]), f"{seq}: wrong number of blocks"
            for b in table:
                counts[b] += 1
        assert counts == self.ref_count, "ref counts disagree with the block tables"
        assert set(self.tables).isdisjoint(self.swapped), "a sequence is both resident and swapped"
        for seq, cpu in self.swapped.items():
            assert len(cpu) == self.blocks_needed(self.lengths[seq])
            assert all(self.cpu_ref[b] == 1 for b in cpu)
        for seq, table in self.tables.items():  # the last block holds the sequence's tail
            tail = self.lengths[seq] - (len(table) - 1) * self.block_size
            assert self.filled[table[-1]] >= tail or self.ref_count[table[-1]] > 1

    def snapshot(self) -> dict:
        """Everything a page needs to draw the physical blocks and the block tables."""
        owners: list[list[str]] = [[] for _ in range(self.num_blocks)]
        for seq, table in self.tables.items():
            for b in table:
                owners[b].append(seq)
        used_slots = sum(self.lengths[s] for s in self.tables)
        shared_slots = sum(self.filled[b] for b in range(self.num_blocks) if self.ref_count[b] > 0)
        allocated = sum(1 for r in self.ref_count if r > 0)
        return {
            "blocks": [
                {"block": b, "owners": owners[b], "ref_count": self.ref_count[b], "filled": self.filled[b]}
                for b in range(self.num_blocks)
            ],
            "tables": {s: list(t) for s, t in self.tables.items()},
            "lengths": dict(self.lengths),
            "swapped": {s: list(c) for s, c in self.swapped.items()},
            "allocated_blocks": allocated,
            "free_blocks": self.num_blocks - allocated,
            "logical_tokens": used_slots,  # what the sequences see
            "stored_tokens": shared_slots,  # what memory actually holds (shared blocks counted once)
            "waste_slots": allocated * self.block_size - shared_slots,
            "copies": self.copies,
        }


def scenario_steps(block_size: int = 4, num_blocks: int = 12, num_cpu_blocks: int = 8) -> list[dict]:
    """A fixed story, one snapshot per step: what vLLM's block manager does, explained as it happens.

    1-2  request A (7-token prompt) and B (5-token prompt) get blocks on demand;
    3    a few decode steps: tokens fill the last block, then a new block is taken;
    4-5  request C asks for 2 samples (parallel sampling): fork shares C's prompt blocks (ref count 2);
    6    both samples write their first new token -> copy-on-write of the shared, partly filled last block;
    7-8  decoding continues until the pool runs out -> B (the latest arrival after C) is preempted and swapped
         to CPU memory;
    9-10 A finishes and frees its blocks; B is swapped back in.
    """
    m = BlockManager(num_blocks, block_size, num_cpu_blocks)
    steps: list[dict] = []

    def record(key: str, **fmt) -> None:
        m.check()
        steps.append({"step": len(steps) + 1, "key": key, "fmt": fmt, "log": list(m.log), **m.snapshot()})

    m.allocate("A", 7)
    record("alloc_a", blocks=len(m.tables["A"]))
    m.allocate("B", 5)
    record("alloc_b", blocks=len(m.tables["B"]))
    kinds = [m.append("A") for _ in range(2)] + [m.append("B") for _ in range(3)]
    record("decode", new=kinds.count("new"))
    m.allocate("C", 6)
    record("alloc_c", blocks=len(m.tables["C"]))
    m.fork("C", "C#2")
    record("fork")
    kinds = [m.append("C"), m.append("C#2")]
    record("cow", copies=kinds.count("cow"))
    preempted = None
    for _ in range(4 * block_size):
        try:
            for seq in ("A", "C", "C#2", "B"):
                if seq in m.tables:
                    m.append(seq)
        except OutOfBlocks:
            preempted = "B"
            m.swap_out("B")  # the paper's FCFS rule: the latest arrival is preempted first
            break
    record("grow" if preempted is None else "preempt", seq=preempted or "-")
    m.free("A")
    record("free_a")
    if "B" in m.swapped:
        m.swap_in("B")
        record("swap_in")
    return steps


# ---------------------------------------------------------------------------------------------------------
# Memory usage: contiguous pre-allocation (three policies from the paper) vs paged
# ---------------------------------------------------------------------------------------------------------


def synthetic_lengths(n: int, trace: str = "ShareGPT", max_len: int = 2048, seed: int = 0) -> list[tuple[int, int]]:
    """(prompt, output) lengths drawn from log-normal distributions with the paper's means (Fig. 11).

    SYNTHETIC: the paper's traces are not shipped here; only their means are matched (spread σ = 0.8).
    Each sequence is capped at max_len tokens.
    """
    if trace not in PAPER_TRACES:
        raise InputError("paged.unknown_trace", choices=sorted(PAPER_TRACES), value=trace)
    if not 1 <= n <= 100_000:
        raise InputError("paged.bad_n")
    rng = random.Random(seed)
    sigma = 0.8
    mean_in, mean_out = PAPER_TRACES[trace]
    out = []
    for _ in range(n):
        p = max(1, round(rng.lognormvariate(math.log(mean_in) - sigma**2 / 2, sigma)))
        o = max(1, round(rng.lognormvariate(math.log(mean_out) - sigma**2 / 2, sigma)))
        p = min(p, max_len - 1)
        out.append((p, min(o, max_len - p)))
    return out


def _pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, n))))


def allocation_usage(requests: Iterable[tuple[int, int]], max_len: int = 2048, block_size: int = 16) -> list[dict]:
    """Average share of reserved KV memory holding real token states, over every decoding step of every request.

    For a request with prompt p and output o, at step t (0 ≤ t < o) it holds p + t + 1 tokens. Reserved:
      contiguous (Max)    max_len                       — Orca (Max) in the paper
      contiguous (Pow2)   p + next power of two ≥ o      — Orca (Pow2): at most 2× over-reservation
      contiguous (Oracle) p + o                          — Orca (Oracle): knows the output length
      paged (vLLM)        ceil((p + t + 1) / block) · block
    Waste splits into *reservation* (slots for tokens this request will still write) and *internal
    fragmentation* (slots it will never write). External fragmentation (holes between chunks) needs an
    allocator simulation and is left out, which flatters the contiguous policies; the paper measured it at
    8.9–41.6% on top (Fig. 2).
    """
    if max_len <= 0 or block_size <= 0:
        raise InputError("paged.bad_max_len")
    reqs = [(int(p), int(o)) for p, o in requests]
    if not reqs:
        raise InputError("batching.no_requests")
    if any(p <= 0 or o <= 0 or p + o > max_len for p, o in reqs):
        raise InputError("paged.bad_request")
    policies = {
        "contiguous (Max)": lambda p, o, t: max_len,
        "contiguous (Pow2)": lambda p, o, t: min(max_len, p + _pow2(o)),
        "contiguous (Oracle)": lambda p, o, t: p + o,
        f"paged (block {block_size})": lambda p, o, t: math.ceil((p + t + 1) / block_size) * block_size,
    }
    rows = []
    for name, reserve in policies.items():
        paged = name.startswith("paged")
        used = reserved_total = future = 0
        for p, o in reqs:
            final = p + o
            for t in range(o):
                now = p + t + 1
                r = reserve(p, o, t)
                used += now
                reserved_total += r
                if not paged:  # paged: the empty slots are the tail of the last block, counted as fragmentation
                    future += min(r, final) - now  # slots this request will fill later
        rows.append(
            {
                "policy": name,
                "token_states_pct": 100 * used / reserved_total,
                "reservation_pct": 100 * future / reserved_total,
                "internal_frag_pct": 100 * (reserved_total - used - future) / reserved_total,
                "waste_pct": 100 * (1 - used / reserved_total),
            }
        )
    return rows


def kv_bytes_per_token(config, dtype_bytes: int = 4) -> int:
    """2 (K and V) · layers · kv_heads · head_dim · bytes, read from a transformers config."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    return 2 * config.num_hidden_layers * kv_heads * head_dim * dtype_bytes


# ---------------------------------------------------------------------------------------------------------
# Attention through a block table (real computation)
# ---------------------------------------------------------------------------------------------------------


def scatter_to_blocks(kv: Tensor, block_table: list[int], block_size: int, num_blocks: int) -> Tensor:
    """Write a contiguous (H, n, D) K or V into a (num_blocks, H, block_size, D) pool along the block table."""
    H, n, D = kv.shape
    if len(block_table) < math.ceil(n / block_size):
        raise ValueError("block table too short for the sequence")
    pool = torch.zeros(num_blocks, H, block_size, D, dtype=kv.dtype)
    for i, b in enumerate(block_table):
        chunk = kv[:, i * block_size : (i + 1) * block_size]  # (H, ≤block, D)
        pool[b, :, : chunk.shape[1]] = chunk
    return pool


def paged_attention(q: Tensor, k_pool: Tensor, v_pool: Tensor, block_table: list[int], context_len: int) -> Tensor:
    """One decode step's attention, reading K and V block by block through the block table.

    q (Hq, D) is the new token's query; k_pool, v_pool (num_blocks, Hkv, block_size, D) hold every sequence's
    blocks in whatever physical order the manager chose. Grouped-query attention: Hq is a multiple of Hkv.
    Each block is used as soon as it is read, with the same online softmax as FlashAttention, so the gathered
    K/V never has to be contiguous.
    """
    Hq, D = q.shape
    Hkv, bs = k_pool.shape[1], k_pool.shape[2]
    if Hq % Hkv:
        raise ValueError("query heads must be a multiple of KV heads")
    group = Hq // Hkv
    scale = 1.0 / math.sqrt(D)
    m = torch.full((Hq, 1), float("-inf"), dtype=q.dtype)
    l_sum = torch.zeros(Hq, 1, dtype=q.dtype)
    acc = torch.zeros(Hq, v_pool.shape[-1], dtype=q.dtype)
    for i, b in enumerate(block_table):
        n = min(bs, context_len - i * bs)  # valid tokens in this block
        if n <= 0:
            break
        k_b = k_pool[b, :, :n].repeat_interleave(group, dim=0)  # (Hq, n, D)
        v_b = v_pool[b, :, :n].repeat_interleave(group, dim=0)
        s = torch.einsum("hd,hnd->hn", q, k_b) * scale  # (Hq, n)
        m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
        p = torch.exp(s - m_new)
        corr = torch.exp(m - m_new)
        l_sum = corr * l_sum + p.sum(dim=-1, keepdim=True)
        acc = corr * acc + torch.einsum("hn,hnd->hd", p, v_b)
        m = m_new
    return acc / l_sum


def real_kv_check(
    lm, text: str = "PagedAttention stores the KV cache in blocks.", block_size: int = 4, seed: int = 0
) -> dict:
    """Run `lm` on `text`, scatter layer 0's real K/V into randomly placed blocks, and compare paged attention
    with ordinary attention over the contiguous cache. Returns the max difference and the sizes involved."""
    import torch.nn.functional as F

    tok, model = lm.tokenizer, lm.model
    ids = tok(text, return_tensors="pt").input_ids[:, :256]
    with torch.no_grad():
        out = model(ids, use_cache=True)
    cache = out.past_key_values
    layer = cache.layers[0] if hasattr(cache, "layers") else None
    k = (layer.keys if layer is not None else cache[0][0])[0]  # (Hkv, n, D)
    v = (layer.values if layer is not None else cache[0][1])[0]
    Hkv, n, D = k.shape
    Hq = model.config.num_attention_heads
    nblocks = math.ceil(n / block_size)
    pool_size = nblocks * 2
    table = random.Random(seed).sample(range(pool_size), nblocks)  # scattered physical blocks
    k_pool = scatter_to_blocks(k, table, block_size, pool_size)
    v_pool = scatter_to_blocks(v, table, block_size, pool_size)
    q = torch.randn(Hq, D, generator=torch.Generator().manual_seed(seed), dtype=k.dtype)
    paged = paged_attention(q, k_pool, v_pool, table, n)
    group = Hq // Hkv
    k_full, v_full = k.repeat_interleave(group, 0), v.repeat_interleave(group, 0)  # (Hq, n, D)
    dense = F.scaled_dot_product_attention(q[:, None, :], k_full, v_full)[:, 0]  # (Hq, D)
    return {
        "tokens": n,
        "kv_heads": Hkv,
        "head_dim": D,
        "block_size": block_size,
        "block_table": table,
        "max_abs_diff": float((paged - dense).abs().max()),
        "kv_bytes_per_token": kv_bytes_per_token(model.config, k.element_size()),
    }
