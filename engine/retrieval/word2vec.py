"""Word2vec skip-gram with negative sampling, trained live on the Constitution (a few seconds on CPU).

For each (center, context) pair inside a window, push the dot product of their vectors up; for k random
"negative" words drawn from the unigram distribution^0.75, push it down:
    loss = −log σ(u_ctx · v_center) − Σ_neg log σ(−u_neg · v_center)
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from engine.core.corpus import Doc
from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.retrieval.tokenizers import kiwi_content


@dataclass
class Word2VecConfig:
    dim: int = 64  # embedding size
    window: int = 3  # context words on each side
    negatives: int = 5  # negative samples per positive pair
    min_count: int = 3  # rarer words are dropped
    epochs: int = 4
    lr: float = 0.01
    batch_size: int = 1024
    seed: int = 0


@dataclass
class Word2Vec:
    vocab: list[str]
    counts: list[int]
    vectors: np.ndarray  # (V, dim), unit rows
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def neighbours(self, word: str, n: int = 8) -> list[tuple[str, float]]:
        if word not in self.vocab:
            raise InputError("retrieval.not_in_vocabulary", word=word)
        i = self.vocab.index(word)
        sims = self.vectors @ self.vectors[i]
        order = [j for j in np.argsort(-sims) if j != i][:n]
        return [(self.vocab[j], float(sims[j])) for j in order]

    def project_2d(self, words: list[str]) -> np.ndarray:
        """PCA of the chosen words' vectors onto their first two principal components."""
        idx = [self.vocab.index(w) for w in words if w in self.vocab]
        x = self.vectors[idx] - self.vectors[idx].mean(0)
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        return x @ vt[:2].T


def train_word2vec(
    docs: list[Doc], config: Word2VecConfig | None = None, progress: ProgressFn = null_progress, should_stop=None
) -> Word2Vec:
    import torch

    config = config or Word2VecConfig()
    start = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    sentences = [kiwi_content(d.text) for d in docs]
    counts = Counter(t for s in sentences for t in s)
    vocab = [w for w, c in counts.most_common() if c >= config.min_count]
    if len(vocab) < 10:
        raise InputError("retrieval.too_few_words", words=len(vocab), min_count=config.min_count)
    index = {w: i for i, w in enumerate(vocab)}
    pairs = []
    for s in sentences:
        ids = [index[t] for t in s if t in index]
        for i, c in enumerate(ids):
            for j in range(max(0, i - config.window), min(len(ids), i + config.window + 1)):
                if j != i:
                    pairs.append((c, ids[j]))
    pairs = np.array(pairs)
    freq = np.array([counts[w] for w in vocab], dtype=np.float64) ** 0.75
    noise = torch.tensor(freq / freq.sum())
    center = torch.nn.Embedding(len(vocab), config.dim)
    context = torch.nn.Embedding(len(vocab), config.dim)
    torch.nn.init.uniform_(center.weight, -0.5 / config.dim, 0.5 / config.dim)
    torch.nn.init.zeros_(context.weight)
    opt = torch.optim.Adam([*center.parameters(), *context.parameters()], lr=config.lr)
    losses = []
    steps = config.epochs * ((len(pairs) + config.batch_size - 1) // config.batch_size)
    step = 0
    for epoch in range(config.epochs):
        order = rng.permutation(len(pairs))
        total = 0.0
        for b in range(0, len(order), config.batch_size):
            if should_stop is not None and should_stop():
                raise Cancelled("word2vec training stopped")
            batch = torch.tensor(pairs[order[b : b + config.batch_size]])
            v = center(batch[:, 0])  # (B, D)
            u = context(batch[:, 1])  # (B, D)
            neg = context(
                torch.multinomial(noise, len(batch) * config.negatives, replacement=True).view(
                    len(batch), config.negatives
                )
            )  # (B, K, D)
            pos_loss = torch.nn.functional.logsigmoid((u * v).sum(-1))
            neg_loss = torch.nn.functional.logsigmoid(-(neg @ v.unsqueeze(-1)).squeeze(-1)).sum(-1)
            loss = -(pos_loss + neg_loss).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(batch)
            step += 1
        losses.append(total / len(pairs))
        progress(step / steps, f"epoch {epoch + 1}/{config.epochs}: loss {losses[-1]:.3f}")
    w = center.weight.detach().numpy()
    w = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
    return Word2Vec(vocab, [counts[x] for x in vocab], w, losses, time.perf_counter() - start)
