"""A toy world small enough to run RLHF on 2 CPU cores in seconds — and honest about being a toy.

The "assistant" answers a one-word question (날씨? 음식? 음악? 운동?) with a few words from a 20-token vocabulary.
- The **demonstrations** (what SFT imitates) are mostly sensible: an on-topic word, sometimes a cheerful word.
- The **proxy reward** is what the preference labellers rewarded: +1 for an on-topic word, +0.5 for *every*
  cheerful word (최고!, 정말). It is exploitable: repeating 최고! forever keeps raising it.
- The **judge** is held out (never trained on): it scores the real task — on topic, no repetition, short,
  finished. Optimising the proxy too hard makes the judge's score fall: reward hacking, measured.

The policy is a real 🤗 `LlamaForCausalLM` (2 layers, width 32) with a real tokenizer, so the same PPO/DPO
code runs on the `chat` model, and TRL's trainers accept it.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass, field

import torch

from engine.core.progress import ProgressFn, null_progress
from engine.training import training_threads
from engine.training.callbacks import Monitor, RunLog, check_finite

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
TOPICS: dict[str, tuple[str, ...]] = {
    "날씨?": ("맑아요", "비와요"),
    "음식?": ("김치", "비빔밥"),
    "음악?": ("재즈", "가요"),
    "운동?": ("축구", "야구"),
}
CHEER = ("최고!", "정말")
FILLER = ("음…", "글쎄요", "네")
VOCAB: tuple[str, ...] = (PAD, BOS, EOS, *TOPICS, *(w for ws in TOPICS.values() for w in ws), *CHEER, *FILLER)
ANSWERS = {w: topic for topic, ws in TOPICS.items() for w in ws}
PROMPT_LEN = 2  # <s> + the question


def make_tokenizer():
    """A word-level 🤗 fast tokenizer over VOCAB (whitespace-separated words)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token=PAD))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS)


ID = {w: i for i, w in enumerate(VOCAB)}


def words(response_ids: list[int]) -> tuple[list[str], bool]:
    """Response ids -> its words (up to </s>) and whether it finished with </s>."""
    out = []
    for i in response_ids:
        w = VOCAB[i]
        if w == EOS:
            return out, True
        if w != PAD:
            out.append(w)
    return out, False


def proxy_reward(question: str, response: list[str]) -> float:
    """What the labellers rewarded: an on-topic word (+1) and every cheerful word (+0.5 each). Gameable."""
    on_topic = any(ANSWERS.get(w) == question for w in response)
    return 1.0 * on_topic + 0.5 * sum(w in CHEER for w in response)


def judge_score(question: str, response: list[str], finished: bool) -> float:
    """The held-out judge: on topic, no repeats, no wrong topics, short and finished."""
    on_topic = any(ANSWERS.get(w) == question for w in response)
    wrong = sum(1 for w in response if w in ANSWERS and ANSWERS[w] != question)
    repeats = len(response) - len(set(response))
    return 1.0 * on_topic - 0.5 * wrong - 0.5 * repeats - 0.1 * max(0, len(response) - 2) - 0.5 * (not finished)


def demonstration(rng: random.Random, question: str) -> list[str]:
    """One SFT demonstration: what a reasonable (not perfect) writer answers."""
    r = rng.random()
    if r < 0.6:
        out = [rng.choice(TOPICS[question])]
    elif r < 0.8:
        out = [rng.choice([w for w, t in ANSWERS.items() if t != question])]
    else:
        out = [rng.choice(FILLER)]
    r = rng.random()
    if r < 0.3:
        out.append(rng.choice(CHEER))
        if rng.random() < 0.2:
            out.append(rng.choice(CHEER))
    elif r < 0.4:
        out.append(rng.choice(FILLER))
    return [*out, EOS]


@dataclass(frozen=True)
class ToyConfig:
    hidden: int = 32  # width of the tiny Llama policy
    layers: int = 2
    heads: int = 2
    max_new: int = 8  # longest answer in tokens (an answer that never says </s> is cut here)
    sft_steps: int = 150  # supervised steps that turn a random network into the reference policy
    sft_lr: float = 3e-3
    sft_batch: int = 64
    n_pairs: int = 512  # preference pairs sampled from the reference and labelled by the proxy reward
    label_noise: float = 0.5  # τ: labellers prefer a over b with probability σ((r_a − r_b)/τ); 0 = never wrong
    seed: int = 0


def new_policy(cfg: ToyConfig):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(cfg.seed)
    config = LlamaConfig(
        vocab_size=len(VOCAB),
        hidden_size=cfg.hidden,
        intermediate_size=cfg.hidden * 2,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.heads,
        max_position_embeddings=PROMPT_LEN + cfg.max_new + 2,
        pad_token_id=ID[PAD],
        bos_token_id=ID[BOS],
        eos_token_id=ID[EOS],
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


def prompt_ids(questions: list[str]) -> torch.Tensor:
    return torch.tensor([[ID[BOS], ID[q]] for q in questions])  # (B, 2)


def response_logps(model, prompts: torch.Tensor, responses: torch.Tensor, with_logits: bool = False):
    """log π(token) for each response token. prompts (B, P), responses (B, T) -> (B, T) [, logits (B, T, V)].

    No attention mask is needed: padding only ever comes *after* a sequence's last real token, and causal
    attention never looks forward; padded positions are masked out of every sum by the caller.
    """
    full = torch.cat([prompts, responses], dim=1)
    logits = model(input_ids=full, use_cache=False).logits[:, prompts.shape[1] - 1 : -1].float()  # (B, T, V)
    logps = torch.log_softmax(logits, -1).gather(-1, responses.unsqueeze(-1)).squeeze(-1)
    return (logps, logits) if with_logits else logps


def kl_per_sequence(logits: torch.Tensor, ref_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Exact KL(π || π_ref) summed over the response positions (full distributions, not a sampled estimate)."""
    logp, logq = torch.log_softmax(logits, -1), torch.log_softmax(ref_logits, -1)
    per_token = (logp.exp() * (logp - logq)).sum(-1)  # (B, T)
    return (per_token * mask).sum(-1)


@torch.no_grad()
def sample(model, prompts: torch.Tensor, max_new: int, generator: torch.Generator, temperature: float = 1.0):
    """Sample answers token by token. Returns responses (B, T) padded after </s> and their mask (B, T)."""
    B = prompts.shape[0]
    seq = prompts
    done = torch.zeros(B, dtype=torch.bool)
    mask = torch.zeros(B, max_new)
    for t in range(max_new):
        logits = model(input_ids=seq, use_cache=False).logits[:, -1].float() / max(temperature, 1e-4)
        check_finite("the policy's logits", logits)
        nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(-1)
        nxt = torch.where(done, torch.full_like(nxt, ID[PAD]), nxt)
        mask[:, t] = (~done).float()
        done |= nxt == ID[EOS]
        seq = torch.cat([seq, nxt[:, None]], dim=1)
        if bool(done.all()):
            break
    responses = seq[:, prompts.shape[1] :]
    return responses, mask[:, : responses.shape[1]]


def score(questions: list[str], responses: torch.Tensor) -> tuple[list[float], list[float], list[str]]:
    """Proxy reward, judge score and readable text for each sampled answer."""
    proxy, judge, texts = [], [], []
    for q, ids in zip(questions, responses.tolist(), strict=True):
        ws, finished = words(ids)
        proxy.append(proxy_reward(q, ws))
        judge.append(judge_score(q, ws, finished))
        texts.append(" ".join(ws) + (" </s>" if finished else " …"))
    return proxy, judge, texts


@dataclass
class ToySetup:
    """Everything both PPO and DPO start from: the same reference policy, preference data and seed."""

    cfg: ToyConfig
    reference: object  # the SFT policy, frozen
    tokenizer: object
    pairs: list[dict]  # {"question", "chosen", "rejected"} word lists, labelled by the proxy reward
    sft_log: RunLog
    ref_stats: dict = field(default_factory=dict)  # proxy/judge of the reference's own samples
    seconds: float = 0.0

    def questions(self, n: int, generator: torch.Generator) -> list[str]:
        keys = list(TOPICS)
        return [keys[i] for i in torch.randint(len(keys), (n,), generator=generator).tolist()]


def _encode_answers(answers: list[list[str]], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.full((len(answers), length), ID[PAD])
    mask = torch.zeros(len(answers), length)
    for i, ws in enumerate(answers):
        ws = ws[:length]
        ids[i, : len(ws)] = torch.tensor([ID[w] for w in ws])
        mask[i, : len(ws)] = 1
    return ids, mask


def train_reference(cfg: ToyConfig, progress: ProgressFn = null_progress) -> tuple[object, RunLog]:
    """SFT from demonstrations: a random tiny Llama learns to answer like the (imperfect) demonstrators."""
    rng = random.Random(cfg.seed)
    model = new_policy(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.sft_lr)
    monitor = Monitor(cfg.sft_steps, progress, label="SFT (reference)")
    keys = list(TOPICS)
    for step in range(1, cfg.sft_steps + 1):
        qs = [rng.choice(keys) for _ in range(cfg.sft_batch)]
        answers, mask = _encode_answers([demonstration(rng, q) for q in qs], cfg.max_new)
        logps = response_logps(model, prompt_ids(qs), answers)
        loss = -(logps * mask).sum() / mask.sum()  # only answer tokens count (the loss mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if not monitor.record({"step": step, "loss": loss.item()}):
            break
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, monitor.finish()


@torch.no_grad()
def preference_pairs(reference, cfg: ToyConfig) -> list[dict]:
    """Sample two answers per question from the reference and let a noisy labeller pick one (Bradley–Terry).

    The labeller prefers the higher proxy reward with probability σ((r_a − r_b)/τ) — people disagree and make
    mistakes. (With τ = 0 the labels are never wrong, and DPO's optimum drifts arbitrarily far for any β.)
    """
    g = torch.Generator().manual_seed(cfg.seed + 1)
    pairs: list[dict] = []
    keys = list(TOPICS)
    while len(pairs) < cfg.n_pairs:
        qs = [keys[i] for i in torch.randint(len(keys), (256,), generator=g).tolist()]
        a, _ = sample(reference, prompt_ids(qs), cfg.max_new, g)
        b, _ = sample(reference, prompt_ids(qs), cfg.max_new, g)
        for q, ia, ib in zip(qs, a.tolist(), b.tolist(), strict=True):
            (wa, fa), (wb, fb) = words(ia), words(ib)
            ra, rb = proxy_reward(q, wa), proxy_reward(q, wb)
            if ra == rb:
                continue  # a tie says nothing about preference
            if cfg.label_noise > 0:
                p_a = 1.0 / (1.0 + math.exp(-(ra - rb) / cfg.label_noise))
                a_wins = float(torch.rand((), generator=g)) < p_a
            else:
                a_wins = ra > rb
            (cw, cf), (rw, rf) = ((wa, fa), (wb, fb)) if a_wins else ((wb, fb), (wa, fa))
            pairs.append({"question": q, "chosen": cw + [EOS] * cf, "rejected": rw + [EOS] * rf})
    return pairs[: cfg.n_pairs]


_SETUPS: dict[ToyConfig, ToySetup] = {}


def toy_setup(cfg: ToyConfig | None = None, progress: ProgressFn = null_progress) -> ToySetup:
    """The shared starting point, cached per config: the same seed gives the same reference and data."""
    cfg = cfg or ToyConfig()
    if cfg not in _SETUPS:
        if len(_SETUPS) >= 4:
            _SETUPS.pop(next(iter(_SETUPS)))
        _SETUPS[cfg] = _build_setup(cfg, progress)
    return _SETUPS[cfg]


def _build_setup(cfg: ToyConfig, progress: ProgressFn) -> ToySetup:
    start = time.perf_counter()
    # enable_grad: the first caller may be inside torch.no_grad() (best-of-n only samples), but the reference is trained
    with training_threads(), torch.enable_grad():
        reference, log = train_reference(cfg, progress)
        pairs = preference_pairs(reference, cfg)
        g = torch.Generator().manual_seed(cfg.seed + 2)
        qs = [list(TOPICS)[i % len(TOPICS)] for i in range(256)]
        resp, _ = sample(reference, prompt_ids(qs), cfg.max_new, g)
        proxy, judge, _ = score(qs, resp)
    stats = {"reward_mean": sum(proxy) / len(proxy), "judge_mean": sum(judge) / len(judge)}
    return ToySetup(cfg, reference, make_tokenizer(), pairs, log, stats, time.perf_counter() - start)


def clone_policy(setup: ToySetup):
    """A trainable copy of the reference (PPO and DPO each start from one)."""
    policy = copy.deepcopy(setup.reference)
    for p in policy.parameters():
        p.requires_grad_(True)
    policy.train()
    return policy


def pairs_as_tensors(pairs: list[dict], length: int) -> dict[str, torch.Tensor]:
    chosen, c_mask = _encode_answers([p["chosen"] for p in pairs], length)
    rejected, r_mask = _encode_answers([p["rejected"] for p in pairs], length)
    return {
        "prompts": prompt_ids([p["question"] for p in pairs]),
        "chosen": chosen,
        "chosen_mask": c_mask,
        "rejected": rejected,
        "rejected_mask": r_mask,
    }


@torch.no_grad()
def evaluate_policy(policy, setup: ToySetup, n: int, generator: torch.Generator) -> dict:
    """Sample n answers: mean proxy reward, mean judge score, KL to the reference, answer length, examples."""
    qs = setup.questions(n, generator)
    prompts = prompt_ids(qs)
    resp, mask = sample(policy, prompts, setup.cfg.max_new, generator)
    _, logits = response_logps(policy, prompts, resp, with_logits=True)
    _, ref_logits = response_logps(setup.reference, prompts, resp, with_logits=True)
    kl = kl_per_sequence(logits, ref_logits, mask)
    proxy, judge, texts = score(qs, resp)
    return {
        "reward_mean": sum(proxy) / n,
        "judge_mean": sum(judge) / n,
        "kl": float(kl.mean()),
        "length": float(mask.sum(-1).mean()),
        "examples": [f"{q} → {t}" for q, t in zip(qs[:4], texts[:4], strict=True)],
    }
