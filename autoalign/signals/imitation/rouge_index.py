"""ROUGE-L novelty against a growing pool, indexed so that it is not quadratic.

Self-Instruct (Wang et al. 2023, sec. 2.3) keeps a new instruction only when its ROUGE-L with *every* instruction
of the pool is below a threshold (0.7), and the pool grows with each instruction kept: scored naively that is one
LCS per (candidate, pool item), quadratic over a run. ``RougeIndex`` keeps an inverted index word -> pool items and
scores a candidate (with rouge-score, the reference implementation) only against the pool items that *can* reach
the threshold.

Why that is exact. Tokenize with the scorer's own tokenizer; let the candidate c have m tokens, a pool item r have
n tokens, and ``shared(c, r) = sum over words w of min(#c(w), #r(w))``. A common subsequence of c and r uses each
word w at most #c(w) times (it is a subsequence of c) and at most #r(w) times (of r), so
``LCS(c, r) <= shared(c, r)``. ROUGE-L's F-measure with beta = 1 (Lin 2004, eqs. 2-4) is, with P = LCS/m and
R = LCS/n, ``F = 2PR / (P + R) = 2 LCS / (m + n)``. Hence ``F >= t`` implies ``shared(c, r) >= t (m + n) / 2``: a
pool item whose shared-word count is below that bound cannot reach the threshold and need not be scored, and a pool
item sharing no word has F = 0 < t (t > 0). The index yields ``shared`` for every pool item sharing a word in one
pass over the candidate's posting lists; only items passing the bound are scored, by the same rouge-score call the
brute-force filter makes, so both reject exactly the same candidates (``tests/imitation``: random pools). The bound
is checked with a tiny slack (1e-9) so float rounding can only make it score one item more, never one fewer.

Why the lookup does not grow with the pool (prefix filtering on both sides, PPJoin: Xiao et al. 2008, Lemma 1).
Any pool item reaching t shares ``a_c = t m / (2 - t)`` tokens with the candidate: if n >= m, ``shared >= t (m +
n) / 2 >= t m >= a_c``; if n < m, F >= t needs ``2 n / (m + n) >= t`` (LCS <= n), i.e. n >= t m / (2 - t), and then
``shared >= t (m + n) / 2 >= a_c``; symmetrically ``shared >= a_r = t n / (2 - t)``. Make tokens a set (the k-th
occurrence of a word is its own token, so set overlap = ``shared``) and put every token in one fixed global order,
rarest word first. If two token sets overlap in o tokens, their first ``|x| - o + 1`` and ``|y| - o + 1`` tokens
in that order share one (Lemma 1); longer prefixes (``m - ceil(a_c) + 1`` for the candidate, ``n - ceil(a_r) + 1``
for an item, with a_c, a_r <= o) share one too. So only each item's prefix is indexed and only the candidate's
prefix is looked up: a common word ("the", in most instructions) sits at the end of the order, outside nearly
every prefix, and its posting list stays short. The order is the words' frequency in the pool when it was last
built; the prefixes are rebuilt with a fresh order each time the pool doubles (amortised O(1) per item), since an
order fixed on a small seed pool goes stale. Items are indexed for thresholds >= ``min_threshold`` (a prefix for
a higher threshold is shorter); a lower one scans every item's full token counts. ``benchmarks/synthesis.py``
measures the cost per candidate as the pool grows.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache
from typing import Any, Iterable, Sequence

_WORD = re.compile(r"\w+")


class _Words:
    """The lab's words for ROUGE: lower-cased ``\\w+`` runs (letters of any script, digits, ``_``). rouge-score's
    default tokenizer keeps only ``[a-z0-9]`` runs, which would split ``x_1`` and drop non-ASCII words."""

    @staticmethod
    def tokenize(text: str) -> list[str]:
        return _WORD.findall(text.lower())


def words(text: str) -> list[str]:
    """The tokens ROUGE-L is computed over (and the index is built from): the same tokenizer, so the bound holds."""
    return _Words.tokenize(text)


@lru_cache(maxsize=1)
def _rouge_l_scorer() -> Any:
    from rouge_score.rouge_scorer import RougeScorer  # imported when first needed (it imports nltk)

    return RougeScorer(["rougeL"], tokenizer=_Words())


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F-measure (Lin 2004, eqs. 2-4, beta = 1) over lower-cased word tokens: LCS-based recall R = LCS/m,
    precision P = LCS/n, F = 2PR / (P + R); computed by Google's ``rouge-score`` (the reference reimplementation of
    ROUGE-1.5.5) with the tokenizer above. 0 when either text has no word."""
    return float(_rouge_l_scorer().score(reference, candidate)["rougeL"].fmeasure)


def brute_force_nearest(pool: Sequence[str], text: str, threshold: float) -> tuple[int, float] | None:
    """The most similar pool item (lowest position on ties) when its ROUGE-L reaches ``threshold``, scoring every
    item: the reference the index is tested against."""
    best: tuple[int, float] | None = None
    for i, other in enumerate(pool):
        s = rouge_l(text, other)
        if s >= threshold and (best is None or s > best[1]):
            best = (i, s)
    return best


class RougeIndex:
    """A pool of texts with a prefix-filtered word index (module docstring). ``nearest(text, t)`` equals
    ``brute_force_nearest(pool, text, t)``; ``scored`` counts the ROUGE-L computations made (against ``compared``,
    the brute-force count), ``probed`` the pool items looked at through the index."""

    def __init__(self, texts: Iterable[str] = (), min_threshold: float = 0.5):
        if not 0.0 < min_threshold <= 1.0:
            raise ValueError("min_threshold must be in (0, 1]")
        self.min_threshold = min_threshold
        self.texts: list[str] = []
        self._lengths: list[int] = []
        self._counts: list[Counter[str]] = []  # each item's word counts (the exact shared count of a probed item)
        self._df: Counter[str] = Counter()  # items holding each word (the rarity the order is built from)
        self._order: dict[str, int] = {}  # word -> its item count when the order was built (absent: 0, rarest)
        self._postings: dict[tuple[str, int], list[int]] = {}  # prefix token (word, occurrence) -> items
        self._built = 0
        self.scored = 0
        self.compared = 0
        self.probed = 0
        for t in texts:
            self.add(t)

    def __len__(self) -> int:
        return len(self.texts)

    def _tokens(self, counts: Counter[str]) -> list[tuple[str, int]]:
        """The token set of a text (the k-th occurrence of a word is token (word, k)), in the global order."""
        toks = [(w, k) for w, c in counts.items() for k in range(c)]
        return sorted(toks, key=lambda x: (self._order.get(x[0], 0), x[0], x[1]))

    @staticmethod
    def _prefix_len(n: int, threshold: float) -> int:
        least = max(1, math.ceil(threshold * n / (2 - threshold) - 1e-6))  # a lower bound on shared (docstring)
        return max(0, n - least + 1)

    def _index(self, i: int) -> None:
        toks = self._tokens(self._counts[i])
        for tok in toks[: self._prefix_len(len(toks), self.min_threshold)]:
            self._postings.setdefault(tok, []).append(i)

    def _rebuild(self) -> None:
        self._order = dict(self._df)
        self._postings = {}
        for i in range(len(self.texts)):
            self._index(i)
        self._built = len(self.texts)

    def add(self, text: str) -> int:
        """Append ``text`` to the pool; its position."""
        i = len(self.texts)
        counts = Counter(words(text))
        self.texts.append(text)
        self._counts.append(counts)
        self._lengths.append(sum(counts.values()))
        self._df.update(counts.keys())
        if len(self.texts) >= 2 * max(self._built, 8):
            self._rebuild()
        else:
            self._index(i)
        return i

    def shared(self, text: str) -> dict[int, int]:
        """``shared(text, r)`` (module docstring) for every pool item r sharing at least one word."""
        counts = Counter(words(text))
        out = {}
        for i, other in enumerate(self._counts):
            s = sum(min(c, other.get(w, 0)) for w, c in counts.items())
            if s:
                out[i] = s
        return out

    def candidates(self, text: str, threshold: float) -> list[int]:
        """The pool positions whose ROUGE-L with ``text`` can reach ``threshold``: 2 shared >= t (m + n), found
        through the candidate's prefix tokens when ``threshold >= min_threshold`` (module docstring)."""
        if threshold <= 0:
            return list(range(len(self.texts)))
        counts = Counter(words(text))
        m = sum(counts.values())
        if m == 0:
            return []  # ROUGE-L is 0 against every item: none reaches t > 0
        if threshold >= self.min_threshold:
            toks = self._tokens(counts)
            found: set[int] = set()
            for tok in toks[: self._prefix_len(m, threshold)]:
                found.update(self._postings.get(tok, ()))
        else:
            found = set(range(len(self.texts)))
        self.probed += len(found)
        return sorted(i for i in found
                      if 2 * sum(min(c, self._counts[i].get(w, 0)) for w, c in counts.items())
                      >= threshold * (m + self._lengths[i]) - 1e-9)

    def nearest(self, text: str, threshold: float) -> tuple[int, float] | None:
        """The most similar pool item (lowest position on ties) when its ROUGE-L reaches ``threshold``, else None."""
        self.compared += len(self.texts)
        best: tuple[int, float] | None = None
        for i in self.candidates(text, threshold):
            self.scored += 1
            s = rouge_l(text, self.texts[i])
            if s >= threshold and (best is None or s > best[1]):
                best = (i, s)
        return best
