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
"""

from __future__ import annotations

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
    """A pool of texts with an inverted word index. ``nearest(text, t)`` equals ``brute_force_nearest(pool, text,
    t)``; ``scored`` counts the ROUGE-L computations made (against ``compared``, the brute-force count)."""

    def __init__(self, texts: Iterable[str] = ()):
        self.texts: list[str] = []
        self._lengths: list[int] = []
        self._postings: dict[str, list[tuple[int, int]]] = {}  # word -> [(pool position, count in that item)]
        self.scored = 0
        self.compared = 0
        for t in texts:
            self.add(t)

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, text: str) -> int:
        """Append ``text`` to the pool; its position."""
        i = len(self.texts)
        counts = Counter(words(text))
        self.texts.append(text)
        self._lengths.append(sum(counts.values()))
        for w, c in counts.items():
            self._postings.setdefault(w, []).append((i, c))
        return i

    def shared(self, text: str) -> dict[int, int]:
        """``shared(text, r)`` (module docstring) for every pool item r sharing at least one word."""
        acc: dict[int, int] = {}
        for w, c in Counter(words(text)).items():
            for i, ci in self._postings.get(w, ()):
                acc[i] = acc.get(i, 0) + min(c, ci)
        return acc

    def candidates(self, text: str, threshold: float) -> list[int]:
        """The pool positions whose ROUGE-L with ``text`` can reach ``threshold``: 2 shared >= t (m + n)."""
        if threshold <= 0:
            return list(range(len(self.texts)))
        m = len(words(text))
        return sorted(i for i, s in self.shared(text).items()
                      if 2 * s >= threshold * (m + self._lengths[i]) - 1e-9)

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
