"""Exact quantile edges and KS statistic of a numeric feature from chunks, in bounded memory.

Each float64 value is mapped to an order-preserving uint64 key (missing values
dropped, -0.0 taken as +0.0). The key space is refined like a radix sort, one
pass over both inputs per level:

* pass 1 histograms the top 16 bits of every key of both samples (the root node);
* a *node* is a key-prefix bucket to look into further: either histogrammed by
  its next 4 to 16 bits (about one sub-bucket per 8 values it holds) or, when it
  holds at most :data:`LOAD_LIMIT` values, loaded and solved exactly in memory.

A histogram gives the exact cumulative counts of both samples at each
sub-bucket's end, hence the ECDF difference G there exactly (the same float
expression as scipy's). Inside a sub-bucket G moves by at most its reference
share up and its current share down, so only sub-buckets whose bound beats the
best value found so far are refined. The buckets holding the reference's
quantile ranks are refined until the edge value is one key. Each level fixes at
least 4 more key bits, so after at most 13 levels every question is answered exactly; retained state per round is capped
by :data:`ROUND_BUDGET_BYTES` per feature (further nodes wait for the next pass).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUB_BITS = 16
SUB = 1 << SUB_BITS
ROOT_SHIFT = 64 - SUB_BITS
SIGN = np.uint64(1 << 63)
#: A node holding at most this many values (both samples) is loaded instead of histogrammed.
LOAD_LIMIT = 1 << 14
#: Bytes of node state (histograms, loaded keys) kept for one feature during one pass.
ROUND_BUDGET_BYTES = 2 << 20
BOUND_SLACK = 1e-12


def to_keys(values: np.ndarray) -> np.ndarray:
    """Order-preserving uint64 keys of float64 values without NaN."""
    bits = (values + 0.0).view(np.uint64)
    return np.where(bits >> np.uint64(63) == 1, ~bits, bits | SIGN)


def from_key(key: int) -> float:
    bits = key & ~(1 << 63) if key >> 63 else ~key & ((1 << 64) - 1)
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])


@dataclass(frozen=True)
class Node:
    lo: int  # smallest key of the node
    span: int  # the node holds the keys lo .. lo + 2**span - 1
    r0: int  # reference keys < lo
    c0: int  # current keys < lo
    size: int  # keys of both samples inside

    @property
    def hi(self) -> int:
        return self.lo + (1 << self.span) - 1

    @property
    def bits(self) -> int:
        """Sub-buckets of a histogrammed node: about one per 8 values, 2**4 .. 2**16."""
        wanted = min(SUB_BITS, max(4, (max(self.size, 1) // 8).bit_length()))
        return min(self.span, wanted)

    @property
    def shift(self) -> int:
        return self.span - self.bits

    @property
    def loads(self) -> bool:
        return self.size <= LOAD_LIMIT

    @property
    def cost(self) -> int:
        return self.size * 24 if self.loads else 2 * (1 << self.bits) * 8  # loaded: key, index, sorted copy


class NumericStream:
    """The streaming state of one numeric feature: feed chunks of keys per pass."""

    def __init__(self, ranks: list[int]) -> None:
        self.ranks = ranks
        self.root = [np.zeros(SUB, np.int64), np.zeros(SUB, np.int64)]
        self.n = [0, 0]
        self.best = 0.0
        self.edges: dict[int, tuple[int, int, int]] = {}  # rank -> (key, #ref <= key, #cur <= key)
        self.pending: dict[tuple[int, int], tuple[float, Node]] = {}  # (lo, shift) -> (priority, node)
        self.round: list[Node] = []
        self.ks = True

    # pass 1 -----------------------------------------------------------------
    def feed_root(self, keys: np.ndarray, side: int) -> None:
        self.n[side] += len(keys)
        self.root[side] += np.bincount((keys >> np.uint64(ROOT_SHIFT)).astype(np.intp), minlength=SUB)

    def finish_root(self) -> None:
        self.ks = self.n[0] > 0 and self.n[1] > 0
        root = Node(0, 64, 0, 0, SUB * 8 * 16)  # 2**16 sub-buckets
        self._histogram(root, self.root[0], self.root[1])
        self.root = []
        self._plan_round()

    # refinement passes ------------------------------------------------------
    @property
    def active(self) -> bool:
        return bool(self.round)

    def start_pass(self) -> None:
        nodes = sorted(self.round, key=lambda node: node.lo)
        self.round = nodes
        self._los = np.array([node.lo for node in nodes], dtype=np.uint64)
        self._his = np.array([node.hi for node in nodes], dtype=np.uint64)
        self._shifts = np.array([node.shift for node in nodes], dtype=np.uint64)
        self._masks = np.array([(1 << node.bits) - 1 for node in nodes], dtype=np.uint64)
        hist_nodes = [i for i, node in enumerate(nodes) if not node.loads]
        widths = np.array([1 << nodes[i].bits for i in hist_nodes], dtype=np.intp)
        self._offset = np.full(len(nodes), -1, dtype=np.intp)
        self._offset[hist_nodes] = np.concatenate(([0], np.cumsum(widths)[:-1])) if hist_nodes else []
        self._loads = np.array([node.loads for node in nodes], dtype=bool)
        self._hist = [np.zeros(int(widths.sum()), np.int64) for _ in range(2)]
        self._loaded: list[list[tuple[np.ndarray, np.ndarray]]] = [[], []]

    def feed(self, keys: np.ndarray, side: int) -> None:
        index = np.searchsorted(self._los, keys, "right").astype(np.intp) - 1
        inside = index >= 0
        index[~inside] = 0
        inside &= keys <= self._his[index]
        hist = inside & (self._offset[index] >= 0)
        if hist.any():
            chosen = index[hist]
            sub = ((keys[hist] >> self._shifts[chosen]) & self._masks[chosen]).astype(np.intp)
            self._hist[side] += np.bincount(self._offset[chosen] + sub, minlength=len(self._hist[side]))
        load = inside & self._loads[index]
        if load.any():
            self._loaded[side].append((index[load].astype(np.int32), keys[load]))

    def finish_pass(self) -> None:
        loaded = [self._split(side) for side in range(2)]
        for i, node in enumerate(self.round):
            if node.loads:
                self._solve(node, loaded[0].get(i, _EMPTY), loaded[1].get(i, _EMPTY))
            else:
                start = int(self._offset[i])
                part = slice(start, start + (1 << node.bits))
                self._histogram(node, self._hist[0][part], self._hist[1][part])
        self._hist, self._loaded = [], [[], []]
        self._plan_round()

    def _split(self, side: int) -> dict[int, np.ndarray]:
        if not self._loaded[side]:
            return {}
        index = np.concatenate([part[0] for part in self._loaded[side]])
        keys = np.concatenate([part[1] for part in self._loaded[side]])
        order = np.lexsort((keys, index))
        index, keys = index[order], keys[order]
        bounds = np.flatnonzero(np.diff(index)) + 1
        starts = np.concatenate(([0], bounds))
        return {int(index[start]): part for start, part in zip(starts, np.split(keys, bounds))}

    # solving ------------------------------------------------------------------
    def _g(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        return r / self.n[0] - c / self.n[1]

    def _histogram(self, node: Node, hr: np.ndarray, hc: np.ndarray) -> None:
        cum_r = node.r0 + np.cumsum(hr)
        cum_c = node.c0 + np.cumsum(hc)
        if self.ks:
            g_end = self._g(cum_r, cum_c)
            self.best = max(self.best, float(np.max(np.abs(g_end))))
            if node.shift > 0:
                before = np.concatenate(([node.r0 / self.n[0] - node.c0 / self.n[1]], g_end[:-1]))
                bound = np.maximum(np.abs(before + hr / self.n[0]), np.abs(before - hc / self.n[1]))
                for sub in np.flatnonzero((bound + BOUND_SLACK > self.best) & (hr + hc > 0)):
                    self._want(self._child(node, int(sub), cum_r, cum_c, hr, hc), float(bound[sub]))
        for rank in self.ranks:
            if rank in self.edges or not node.r0 < rank <= int(cum_r[-1]):
                continue
            sub = int(np.searchsorted(cum_r, rank, "left"))
            if node.shift == 0:
                self.edges[rank] = (node.lo + sub, int(cum_r[sub]), int(cum_c[sub]))
            else:
                self._want(self._child(node, sub, cum_r, cum_c, hr, hc), np.inf)

    def _child(self, node: Node, sub: int, cum_r, cum_c, hr, hc) -> Node:  # type: ignore[no-untyped-def]
        r0 = int(cum_r[sub] - hr[sub])
        c0 = int(cum_c[sub] - hc[sub])
        return Node(node.lo + (sub << node.shift), node.shift, r0, c0, int(hr[sub] + hc[sub]))

    def _want(self, node: Node, priority: float) -> None:
        key = (node.lo, node.span)
        previous = self.pending.get(key)
        if previous is None or previous[0] < priority:
            self.pending[key] = (priority, node)

    def _solve(self, node: Node, ref: np.ndarray, cur: np.ndarray) -> None:
        """Both samples' keys of a loaded node (sorted): exact G and exact edges."""
        if self.ks and (len(ref) or len(cur)):
            values = np.concatenate((ref, cur))
            g = self._g(node.r0 + np.searchsorted(ref, values, "right"), node.c0 + np.searchsorted(cur, values, "right"))
            self.best = max(self.best, float(np.max(np.abs(g))))
        for rank in self.ranks:
            if rank in self.edges or not node.r0 < rank <= node.r0 + len(ref):
                continue
            key = ref[rank - node.r0 - 1]
            self.edges[rank] = (
                int(key),
                node.r0 + int(np.searchsorted(ref, key, "right")),
                node.c0 + int(np.searchsorted(cur, key, "right")),
            )

    def _plan_round(self) -> None:
        """The pending nodes still worth a look, quantile nodes first, within the budget."""
        keep = [(p, node) for p, node in self.pending.values() if p == np.inf or p + BOUND_SLACK > self.best]
        keep.sort(key=lambda item: (-item[0], item[1].lo))
        chosen, spent = [], 0
        for priority, node in keep:
            if chosen and spent + node.cost > ROUND_BUDGET_BYTES and priority != np.inf:
                continue
            chosen.append((priority, node))
            spent += node.cost
        chosen_keys = {(node.lo, node.span) for _, node in chosen}
        self.pending = {(n.lo, n.span): (p, n) for p, n in keep if (n.lo, n.span) not in chosen_keys}
        self.round = [node for _, node in chosen]

    # results ------------------------------------------------------------------
    def result(self) -> tuple[list[int], list[int], list[int], float | None]:
        """Unique edge keys (ascending), #ref <= each, #cur <= each, and D (None without KS)."""
        unique = sorted({self.edges[rank] for rank in self.ranks})
        return [e[0] for e in unique], [e[1] for e in unique], [e[2] for e in unique], self.best if self.ks else None


_EMPTY = np.zeros(0, dtype=np.uint64)
