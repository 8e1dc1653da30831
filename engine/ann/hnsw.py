"""NSW and HNSW from scratch, for teaching: numpy for the distances, plain Python for the graph.

It follows hnswlib's algorithm step by step (Malkov & Yashunin 2018, as implemented in hnswalg.h) so its recall
can be checked against hnswlib at the same M / efConstruction / efSearch:

- every node draws a top layer ℓ = ⌊−ln(u) · 1/ln(M)⌋, so each layer up holds about 1/M of the nodes below;
- insertion: greedy descent through the layers above ℓ, then on layers ℓ … 0 a beam search with efConstruction
  candidates, `select_neighbors` keeps M of them (the diversity heuristic), links go both ways, and a neighbour
  whose list overflows (M on upper layers, 2·M on layer 0) re-selects its own links with the same heuristic;
- search: greedy descent to layer 1, then a beam search with ef = max(efSearch, k) on layer 0.

`NSW` is the same graph on one flat layer (Malkov et al. 2014), to show what the hierarchy buys.
Every search can record a `LayerTrace` per layer (nodes expanded, edges evaluated) so a page can draw it.
Distances are squared L2 (hnswlib's "l2"): for unit-length embeddings the ranking equals cosine similarity.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError


@dataclass(frozen=True)
class HNSWConfig:
    M: int = 16  # links per node on layers ≥ 1; layer 0 keeps up to 2·M (hnswlib's maxM0)
    ef_construction: int = 200  # beam width while inserting: bigger = better graph, slower build
    ef_search: int = 50  # beam width while searching: bigger = better recall, slower queries
    seed: int = 100  # level generator seed (hnswlib's default random_seed is also 100)
    heuristic: bool = True  # hnswlib's diverse-neighbour selection; False keeps simply the M closest

    def __post_init__(self):
        if not 2 <= self.M <= 256:
            raise InputError("ann.bad_m", value=self.M)
        if not 1 <= self.ef_construction <= 10_000 or not 1 <= self.ef_search <= 10_000:
            raise InputError("ann.bad_ef", ef_construction=self.ef_construction, ef_search=self.ef_search)


@dataclass
class LayerTrace:
    """What one search did on one layer: the page draws `expanded` as a path and `edges` as the links it read."""

    level: int
    entry: int  # node the search on this layer started from
    expanded: list[int] = field(default_factory=list)  # nodes whose link lists were read, in order
    edges: list[tuple[int, int]] = field(default_factory=list)  # (from, to) for every distance computed
    result: list[int] = field(default_factory=list)  # best nodes found on this layer, nearest first
    n_distances: int = 0


@dataclass
class InsertTrace:
    node: int
    level: int  # the new node's top layer
    layers: list[LayerTrace]  # from the graph's top layer down to 0
    new_links: dict[int, list[int]]  # level -> neighbours chosen for the new node
    pruned: dict[int, list[tuple[int, int]]]  # level -> links (neighbour, dropped) removed by an overflow


@dataclass
class SearchTrace:
    layers: list[LayerTrace]  # from the top layer down to 0
    ids: list[int]  # the k results, nearest first
    distances: list[float]
    n_distances: int  # distance computations: the cost an index exists to cut (brute force: n)


Candidate = tuple[float, int]  # (distance to the query, node id)


class HNSW:
    """Hierarchical navigable small world graph over float32 vectors of one dimension."""

    def __init__(self, dim: int, config: HNSWConfig = HNSWConfig(), capacity: int = 1024):
        self.dim = dim
        self.config = config
        self.max_links = config.M  # upper layers (hnswlib maxM_)
        self.max_links0 = 2 * config.M  # layer 0 (hnswlib maxM0_)
        self.level_mult = 1.0 / math.log(config.M)
        self.ef_construction = max(config.ef_construction, config.M)  # as hnswlib does
        self._rng = np.random.default_rng(config.seed)
        self._data = np.empty((capacity, dim), dtype=np.float32)  # (capacity, dim), first `count` rows used
        self.count = 0
        self.levels: list[int] = []  # top layer of each node
        self.links: list[list[list[int]]] = []  # links[node][level] -> neighbour ids
        self.entry_point = -1
        self.max_level = -1
        self.n_distances = 0  # running count of distance computations

    # --- small named steps ------------------------------------------------------------------------------------
    def random_level(self) -> int:
        """ℓ = ⌊−ln(u)/ln(M)⌋: P(ℓ ≥ 1) = 1/M, P(ℓ ≥ 2) = 1/M², … — an exponentially thinning hierarchy."""
        return int(-math.log(1.0 - self._rng.random()) * self.level_mult)

    def distances(self, q: np.ndarray, ids: list[int]) -> np.ndarray:
        """Squared L2 from q (dim,) to the vectors `ids` -> (len(ids),)."""
        self.n_distances += len(ids)
        diff = self._data[ids] - q  # (len(ids), dim)
        return np.einsum("ij,ij->i", diff, diff)

    def greedy_closest(
        self, q: np.ndarray, entry: int, entry_dist: float, level: int, trace: LayerTrace | None = None
    ) -> Candidate:
        """Upper layers: hop to the closest neighbour while that gets closer to q (a beam of width 1)."""
        current, current_dist = entry, entry_dist
        while True:
            neighbours = self.links[current][level]
            if not neighbours:
                return current_dist, current
            d = self.distances(q, neighbours)  # (len(neighbours),)
            if trace is not None:
                trace.expanded.append(current)
                trace.edges.extend((current, n) for n in neighbours)
                trace.n_distances += len(neighbours)
            best = int(np.argmin(d))
            if d[best] >= current_dist:
                return current_dist, current
            current, current_dist = neighbours[best], float(d[best])

    def search_layer(
        self, q: np.ndarray, entry: int, entry_dist: float, ef: int, level: int, trace: LayerTrace | None = None
    ) -> list[Candidate]:
        """Beam search on one layer; returns up to ef (distance, id), nearest first.

        `candidates` is a min-heap of nodes still to expand; `best` a max-heap (negated) of the ef closest so far.
        Stop when the closest unexpanded candidate is farther than the worst of a full `best`.
        """
        visited = {entry}
        candidates: list[Candidate] = [(entry_dist, entry)]
        best: list[tuple[float, int]] = [(-entry_dist, entry)]
        while candidates:
            dist, node = heapq.heappop(candidates)
            if dist > -best[0][0] and len(best) >= ef:
                break
            fresh = [n for n in self.links[node][level] if n not in visited]
            if trace is not None:
                trace.expanded.append(node)
                trace.edges.extend((node, n) for n in fresh)
                trace.n_distances += len(fresh)
            if not fresh:
                continue
            visited.update(fresh)
            for n, d in zip(fresh, self.distances(q, fresh).tolist(), strict=True):
                if len(best) < ef or d < -best[0][0]:
                    heapq.heappush(candidates, (d, n))
                    heapq.heappush(best, (-d, n))
                    if len(best) > ef:
                        heapq.heappop(best)  # drop the farthest
        return sorted((-d, n) for d, n in best)

    def select_neighbors(self, candidates: list[Candidate], m: int) -> list[Candidate]:
        """Keep at most m of the candidates (sorted nearest first).

        Heuristic (hnswlib getNeighborsByHeuristic2): take a candidate only if it is closer to the base node than
        to every neighbour already taken. Links then point in different directions instead of into one cluster,
        which keeps the graph navigable between clusters.
        """
        if not self.config.heuristic:
            return candidates[:m]
        if len(candidates) < m:
            return candidates
        chosen: list[Candidate] = []
        for dist, c in candidates:
            if len(chosen) >= m:
                break
            if chosen and (self.distances(self._data[c], [x for _, x in chosen]) < dist).any():
                continue  # an already chosen neighbour is closer to c than the base node is: c is redundant
            chosen.append((dist, c))
        return chosen

    def connect(self, neighbour: int, node: int, level: int, pruned: list[tuple[int, int]] | None = None) -> None:
        """Add the back link neighbour -> node; if the list overflows, the neighbour re-selects its links."""
        links = self.links[neighbour][level]
        cap = self.max_links0 if level == 0 else self.max_links
        if len(links) < cap:
            links.append(node)
            return
        ids = [*links, node]
        cands = sorted(zip(self.distances(self._data[neighbour], ids).tolist(), ids, strict=True))
        kept = [c for _, c in self.select_neighbors(cands, cap)]
        if pruned is not None:
            pruned.extend((neighbour, x) for x in ids if x not in kept)
        self.links[neighbour][level] = kept

    # --- the two operations -----------------------------------------------------------------------------------
    def insert(self, vector: np.ndarray, trace: bool = False) -> InsertTrace | None:
        node = self.count
        if node == len(self._data):  # grow the vector buffer geometrically
            self._data = np.concatenate([self._data, np.empty_like(self._data)])
        self._data[node] = vector
        self.count += 1
        level = self.random_level()
        self.levels.append(level)
        self.links.append([[] for _ in range(level + 1)])
        record = InsertTrace(node, level, [], {}, {}) if trace else None
        if self.entry_point < 0:  # the first node is the whole graph
            self.entry_point, self.max_level = node, level
            return record

        q = self._data[node]
        ep = self.entry_point
        ep_dist = float(self.distances(q, [ep])[0])
        for lv in range(self.max_level, level, -1):  # layers above the new node's top: just descend
            lt = LayerTrace(lv, ep) if trace else None
            ep_dist, ep = self.greedy_closest(q, ep, ep_dist, lv, lt)
            if lt is not None:
                lt.result = [ep]
                record.layers.append(lt)
        for lv in range(min(level, self.max_level), -1, -1):  # layers the node lives on: search, link, descend
            lt = LayerTrace(lv, ep) if trace else None
            found = self.search_layer(q, ep, ep_dist, self.ef_construction, lv, lt)
            chosen = self.select_neighbors(found, self.config.M)
            self.links[node][lv] = [c for _, c in chosen]
            pruned: list[tuple[int, int]] = []
            for _, c in chosen:
                self.connect(c, node, lv, pruned)
            ep_dist, ep = chosen[0]  # the closest chosen neighbour enters the layer below
            if lt is not None:
                lt.result = [c for _, c in found]
                record.layers.append(lt)
                record.new_links[lv] = [c for _, c in chosen]
                record.pruned[lv] = pruned
        if level > self.max_level:
            self.entry_point, self.max_level = node, level
        return record

    def search(self, q: np.ndarray, k: int, ef: int | None = None, trace: bool = False) -> SearchTrace:
        """The k nearest stored vectors to q (dim,), with the per-layer trace when `trace` is set."""
        if self.count == 0:
            return SearchTrace([], [], [], 0)
        q = np.asarray(q, dtype=np.float32)
        ef = max(ef or self.config.ef_search, k)
        start = self.n_distances
        layers: list[LayerTrace] = []
        ep = self.entry_point
        ep_dist = float(self.distances(q, [ep])[0])
        for lv in range(self.max_level, 0, -1):
            lt = LayerTrace(lv, ep) if trace else None
            ep_dist, ep = self.greedy_closest(q, ep, ep_dist, lv, lt)
            if lt is not None:
                lt.result = [ep]
                layers.append(lt)
        lt = LayerTrace(0, ep) if trace else None
        found = self.search_layer(q, ep, ep_dist, ef, 0, lt)[:k]
        if lt is not None:
            lt.result = [c for _, c in found]
            layers.append(lt)
        return SearchTrace(layers, [c for _, c in found], [d for d, _ in found], self.n_distances - start)

    # --- bulk helpers -----------------------------------------------------------------------------------------
    def add_items(
        self, vectors: np.ndarray, progress: ProgressFn = null_progress, should_stop: Callable[[], bool] | None = None
    ) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape (n, {self.dim}), got {vectors.shape}")
        if self.count + len(vectors) > len(self._data):
            grown = np.empty((self.count + len(vectors), self.dim), dtype=np.float32)
            grown[: self.count] = self._data[: self.count]
            self._data = grown
        every = max(1, len(vectors) // 50)
        for i, v in enumerate(vectors):
            self.insert(v)
            if i % every == 0:
                progress(i / len(vectors), f"inserted {i:,}/{len(vectors):,}")
                if should_stop is not None and should_stop():
                    from engine.core.progress import Cancelled

                    raise Cancelled(f"stopped after {i:,} insertions")

    def knn_query(self, queries: np.ndarray, k: int, ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(q, dim) -> (ids, distances), both (q, k), like hnswlib's knn_query."""
        k = min(k, self.count)
        ids = np.empty((len(queries), k), dtype=np.int64)
        dists = np.empty((len(queries), k), dtype=np.float32)
        for i, q in enumerate(np.asarray(queries, dtype=np.float32)):
            r = self.search(q, k, ef)
            ids[i], dists[i] = r.ids, r.distances
        return ids, dists

    def layer_sizes(self) -> list[int]:
        """Number of nodes on each layer, layer 0 first."""
        return [sum(1 for lv in self.levels if lv >= layer) for layer in range(self.max_level + 1)]

    def edges(self, level: int) -> list[tuple[int, int]]:
        """Undirected edges on one layer (a link in either direction), for drawing."""
        out = set()
        for node, node_links in enumerate(self.links):
            if level < len(node_links):
                out.update((min(node, n), max(node, n)) for n in node_links[level])
        return sorted(out)

    def memory_bytes(self) -> int:
        """Estimate for a compact C layout (as hnswlib stores it): float32 vectors, each link list as int32 ids plus
        a 4-byte count, an 8-byte label per node. Python's own lists and ints are several times bigger."""
        links = sum((len(lv) + 1) * 4 for node_links in self.links for lv in node_links)
        return self.count * self.dim * 4 + links + 8 * self.count


class NSW(HNSW):
    """Navigable small world: the same graph with a single layer. Every search enters at the first node and has
    to walk there with short links; HNSW's sparse upper layers are the long-distance shortcuts."""

    def random_level(self) -> int:
        return 0
