"""The Self-Instruct novelty filter's cost per candidate as the pool grows, in one run:

    python benchmarks/synthesis.py [--sizes 1000,2000,4000,8000,16000] [--candidates 200] [--threshold 0.7]

Instructions are synthetic (no model): 6-20 words drawn from a Zipf-distributed vocabulary of ``--vocab`` words
(a few words, like "the" or "what", in most instructions, as in real ones), seeded. For each pool size the pool is
filled, then ``--candidates`` new instructions go through the filter of ``autoalign.signals.imitation.rouge_index``
(ROUGE-L >= ``--threshold`` against any pool item rejects; a kept one joins the pool, as in Self-Instruct).
Reported per size: microseconds per candidate, ROUGE-L computations and pool items looked at per candidate,
candidates kept per second, and, at the sizes up to ``--brute-max``, the brute-force filter (one ROUGE-L per pool
item, the paper's loop) on the same candidates, with the two filters' decisions compared (they must agree).
The filter is pure Python; one process, no threads.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoalign.signals.imitation.rouge_index import RougeIndex, brute_force_nearest, rouge_l  # noqa: E402


def instruction(rng: random.Random, vocab: list[str], weights: list[float]) -> str:
    return " ".join(rng.choices(vocab, weights=weights, k=rng.randint(6, 20)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,2000,4000,8000,16000")
    ap.add_argument("--candidates", type=int, default=200)
    ap.add_argument("--threshold", type=float, default=0.7)
    ap.add_argument("--vocab", type=int, default=5000)
    ap.add_argument("--brute-max", type=int, default=2000, help="largest pool the brute-force filter also runs on")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    rouge_l("a b", "a c")  # warm-up: rouge-score imports nltk on first use
    vocab = [f"w{i}" for i in range(args.vocab)]
    weights = [1.0 / (i + 1) for i in range(args.vocab)]  # Zipf (s = 1)
    print(f"synthetic instructions: 6-20 words, Zipf over {args.vocab} words; threshold {args.threshold}; "
          f"{args.candidates} candidates per pool size")
    print(f"{'pool':>7}{'us/cand':>10}{'rouge/cand':>12}{'looked/cand':>13}{'kept/s':>9}{'brute us/cand':>15}"
          f"{'agree':>9}")
    for size in (int(s) for s in args.sizes.split(",")):
        rng = random.Random(f"{args.seed}-{size}")
        index = RougeIndex(instruction(rng, vocab, weights) for _ in range(size))
        cands = [instruction(rng, vocab, weights) for _ in range(args.candidates)]
        scored0, probed0 = index.scored, index.probed
        t0 = time.perf_counter()
        decisions, kept = [], 0
        for c in cands:
            near = index.nearest(c, args.threshold)
            decisions.append(near is None)
            if near is None:
                index.add(c)
                kept += 1
        seconds = time.perf_counter() - t0
        brute, agree = "-", "-"
        if size <= args.brute_max:
            pool = list(index.texts[:size])
            t0 = time.perf_counter()
            same = 0
            for c, keep in zip(cands, decisions):
                novel = brute_force_nearest(pool, c, args.threshold) is None
                same += novel == keep
                if novel:
                    pool.append(c)
            brute = f"{1e6 * (time.perf_counter() - t0) / len(cands):.0f}"
            agree = f"{same}/{len(cands)}"
        print(f"{size:>7}{1e6 * seconds / len(cands):>10.0f}{(index.scored - scored0) / len(cands):>12.2f}"
              f"{(index.probed - probed0) / len(cands):>13.1f}{kept / seconds:>9.0f}{brute:>15}{agree:>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
