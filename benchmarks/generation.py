"""Batched sampling throughput against one-prompt-at-a-time generate, same model, prompts and sampling.

Prints tokens/s for both paths and their ratio, measured in the same run (machines are noisy; compare ratios).
    python benchmarks/generation.py --model lab:small --prompts 64 --n 4
"""

from __future__ import annotations

import argparse
import time

from autoalign.models.base import Sampling
from autoalign.models.registry import load_lm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="lab:small")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()

    from autoalign.lab.prompts import lab_prompts

    prompts = [p.messages for p in lab_prompts(args.prompts, seed=0, split="train")]
    sampling = Sampling(n=args.n, temperature=0.9, top_p=0.95, max_new_tokens=args.max_new_tokens, seed=0)
    batched = load_lm(args.model, batch_size=args.batch_size)
    batched.generate(prompts[:2], sampling)  # warm-up

    t0 = time.perf_counter()
    out_b = batched.generate(prompts, sampling)
    t_batched = time.perf_counter() - t0
    tokens_b = sum(c.num_tokens or 0 for cs in out_b for c in cs)

    single = load_lm(args.model, batch_size=1)
    t0 = time.perf_counter()
    out_s = [single.generate([p], sampling)[0] for p in prompts]
    t_single = time.perf_counter() - t0
    tokens_s = sum(c.num_tokens or 0 for cs in out_s for c in cs)

    same = sum(a.text == b.text for x, y in zip(out_b, out_s) for a, b in zip(x, y))
    rows = len(prompts) * args.n
    print(f"model {args.model}: {len(prompts)} prompts x {args.n} samples, <= {args.max_new_tokens} new tokens")
    print(f"{'path':<28}{'seconds':>10}{'tokens':>10}{'tok/s':>10}")
    print(f"{'one prompt at a time':<28}{t_single:>10.2f}{tokens_s:>10}{tokens_s / t_single:>10.1f}")
    print(f"{'batched (' + str(args.batch_size) + ' rows)':<28}{t_batched:>10.2f}{tokens_b:>10}{tokens_b / t_batched:>10.1f}")
    print(f"speed-up (tok/s ratio): {(tokens_b / t_batched) / (tokens_s / t_single):.1f}x")
    print(f"identical samples across the two paths (seeded per prompt): {same}/{rows}")


if __name__ == "__main__":
    main()
