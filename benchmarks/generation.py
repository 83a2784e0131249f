"""Batched sampling throughput against what a user of plain transformers would write, same model, prompts and
sampling, in one run (machines are noisy: compare the ratios, not the seconds).

    python benchmarks/generation.py --model lab:small --prompts 64 --n 4 [--threads 1]
    python benchmarks/generation.py --vocab 32000 --hidden 512 --layers 4 --prompts 32 --n 4   # a real vocabulary

Paths, each generating ``--n`` samples of up to ``--max-new-tokens`` for every prompt (temperature 0.9, top-p 0.95):

- ``autoalign``: ``HFModel.generate``: every (prompt, sample) row in batches of ``--batch-size``, sorted by prompt
  length, seeded per row (batch-independent), log-probabilities recorded as tokens are drawn;
- ``hf num_return_sequences``: one ``model.generate(do_sample=True, num_return_sequences=n)`` call per prompt (the
  usual way to get n samples);
- ``hf batched``: plain ``model.generate(do_sample=True)`` over the same rows in batches of ``--batch-size``, left
  padded (transformers' own sampler: not seeded per row, so its samples depend on the batch layout);
- ``autoalign, one row per call``: the provider with a batch of one (its own baseline).

Also printed: the machine's measured matmul rate (float32, the model's hidden size, ``--threads`` threads) and the
fraction of it the autoalign path reaches, counting 2 FLOP per parameter per generated token (attention over the
cache left out, so the fraction is a slight under-estimate). ``--vocab`` builds a randomly initialised Llama of
that vocabulary (``--hidden``, ``--layers``) instead of loading ``--model``. torch threads are set explicitly
(``--threads``, default 1) and printed: torch's default thread count on a busy machine is many times slower.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def matmul_flops(hidden: int, rows: int = 64, seconds: float = 1.0) -> float:
    """Measured float32 FLOP/s of [rows, hidden] @ [hidden, 4 * hidden] (the MLP's shape at decode time)."""
    import torch

    a, b = torch.randn(rows, hidden), torch.randn(hidden, 4 * hidden)
    for _ in range(3):
        a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return 2 * rows * hidden * 4 * hidden * n / (time.perf_counter() - t0)


def hf_rows(lm: Any, prompts: list, n: int, max_new_tokens: int, batch_size: int, per_prompt: bool) -> int:
    """Plain transformers sampling; returns the tokens generated (up to and without the end token)."""
    import torch

    tok, model = lm.tokenizer, lm.model
    eos, pad = tok.eos_token_id, tok.pad_token_id
    kwargs = dict(do_sample=True, temperature=0.9, top_p=0.95, max_new_tokens=max_new_tokens, pad_token_id=pad,
                  eos_token_id=eos)
    encoded = [lm._encode_prompt(p) for p in prompts]
    tokens = 0

    def count(new: torch.Tensor) -> int:
        total = 0
        for row in new.tolist():
            total += row.index(eos) if eos in row else len(row)
        return total

    with torch.inference_mode():
        if per_prompt:
            for ids in encoded:
                out = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids),
                                     dtype=torch.long), num_return_sequences=n, **kwargs)
                tokens += count(out[:, len(ids):])
        else:
            rows = sorted([ids for ids in encoded for _ in range(n)], key=len)
            for start in range(0, len(rows), batch_size):
                chunk = rows[start:start + batch_size]
                width = max(len(x) for x in chunk)
                input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in chunk])
                attention = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in chunk])
                out = model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
                tokens += count(out[:, width:])
    return tokens


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="lab:small")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--vocab", type=int, default=None, help="a random Llama of this vocabulary instead of --model")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--skip-single", action="store_true", help="leave out the one-row-per-call path (slow)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each path, interleaved; the median is reported")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from autoalign.models.base import Sampling
    from autoalign.models.hf import HFModel

    tmp = None
    if args.vocab:
        from benchmarks.generation_memory import build

        tmp = tempfile.TemporaryDirectory()
        build(Path(tmp.name), args.vocab, args.hidden, args.layers, heads=max(1, args.hidden // 64))
        words = [f"w{6 + (i * 7919) % (args.vocab - 6)}" for i in range(24)]
        prompts: list = [[{"role": "user", "content": " ".join(words[: 12 + i % 12])}] for i in range(args.prompts)]
        load = lambda bs: HFModel(tmp.name, batch_size=bs)  # noqa: E731
        name = f"random Llama (vocab {args.vocab}, hidden {args.hidden}, {args.layers} layers)"
    else:
        from autoalign.lab.prompts import lab_prompts
        from autoalign.models.registry import load_lm

        prompts = [p.messages for p in lab_prompts(args.prompts, seed=0, split="train")]
        load = lambda bs: load_lm(args.model, batch_size=bs)  # noqa: E731
        name = args.model
    sampling = Sampling(n=args.n, temperature=0.9, top_p=0.95, max_new_tokens=args.max_new_tokens, seed=0)
    lm = load(args.batch_size)
    params = sum(p.numel() for p in lm.model.parameters())
    hidden = int(lm.model.config.hidden_size)
    lm.generate(prompts[:2], sampling)  # warm-up

    single = None if args.skip_single else load(1)
    paths: list[tuple[str, Any]] = [
        ("autoalign (batched)", lambda: sum(c.num_tokens or 0 for cs in lm.generate(prompts, sampling) for c in cs)),
        ("hf num_return_sequences", lambda: hf_rows(lm, prompts, args.n, args.max_new_tokens, args.batch_size, True)),
        ("hf batched", lambda: hf_rows(lm, prompts, args.n, args.max_new_tokens, args.batch_size, False)),
    ]
    if single is not None:
        paths.append(("autoalign, one row per call",
                      lambda: sum(c.num_tokens or 0 for p in prompts for c in single.generate([p], sampling)[0])))
    times: dict[str, list[float]] = {label: [] for label, _ in paths}
    tokens_of: dict[str, int] = {}
    for _ in range(args.repeats):  # interleaved, so a burst of load on a shared machine hits every path alike
        for label, run in paths:
            t0 = time.perf_counter()
            tokens_of[label] = run()
            times[label].append(time.perf_counter() - t0)
    results = [(label, statistics.median(times[label]), tokens_of[label]) for label, _ in paths]
    same = None
    if single is not None:
        out, out_s = lm.generate(prompts, sampling), [single.generate([p], sampling)[0] for p in prompts]
        same = sum(a.text == b.text for x, y in zip(out, out_s) for a, b in zip(x, y))
    flops = matmul_flops(hidden)

    rows = len(prompts) * args.n
    print(f"torch threads: {torch.get_num_threads()} (set by --threads)")
    print(f"model {name}: {params / 1e6:.1f}M parameters; {len(prompts)} prompts x {args.n} samples, "
          f"<= {args.max_new_tokens} new tokens, batch {args.batch_size}")
    print(f"median of {args.repeats} interleaved runs per path")
    print(f"{'path':<30}{'seconds':>9}{'tokens':>9}{'tok/s':>10}{'autoalign x':>13}")
    fast = results[0][2] / results[0][1]
    for label, seconds, tokens in results:
        rate = tokens / seconds
        print(f"{label:<30}{seconds:>9.2f}{tokens:>9}{rate:>10.1f}{fast / rate:>13.2f}")
    print(f"matmul rate: {flops / 1e9:.1f} GFLOP/s (float32, [64, {hidden}] x [{hidden}, {4 * hidden}]); the "
          f"autoalign path reaches {100 * fast * 2 * params / flops:.1f}% of it (2 FLOP per parameter per token)")
    if same is not None:
        print(f"identical samples, batched vs one row per call (seeded per row): {same}/{rows}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
