"""Throughput of one generation stage on three backends, as ratios from one run.

    python benchmarks/backends.py [--model lab:tiny|DIR] [--prompts 64] [--max-new-tokens 32] [--workers 2]

The same prompts and greedy sampling go to (1) the Hugging Face provider in this process, (2) the OpenAI-compatible
provider through ``transformers serve`` on 127.0.0.1, and (3) the Hugging Face provider sharded over ``--workers``
Ray actors on a local Ray instance. Greedy decoding makes the three outputs comparable text for text (checked), so
each backend does the same token work (the tokens column counts the HF run's tokens, for every row). Start-up
(server, Ray, replicas) is timed apart from the stage, after one warm-up call per backend.

Every process runs torch with ``--threads`` intra-op threads (default 1, as Ray gives an actor with ``num_cpus=1``),
so the rows compare backends, not thread counts; a last row shows the HF process with torch's default threads,
which on a loaded machine can be many times slower (spinning threads fight for busy cores). On 2 shared cores use
``nice -n 10`` and expect noise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoalign.models.base import Sampling  # noqa: E402


def model_dir(spec: str) -> Path:
    if spec.startswith("lab:"):
        from autoalign.lab.pretrain import ensure_lab_model

        return Path(ensure_lab_model(spec.removeprefix("lab:"), progress=False))
    return Path(spec)


def prompts(n: int) -> list:
    topics = ["the capital of France", "23 + 58", "how to bake bread", "reverse 'hello'", "who wrote Hamlet"]
    return [[{"role": "user", "content": f"Question {i}: tell me about {topics[i % len(topics)]}."}] for i in range(n)]


REPEATS = 3


def timed(lm, ps, sampling: Sampling) -> tuple[float, list]:
    """Median wall time of ``REPEATS`` runs of the stage, after a warm-up call (allocator, connection pool)."""
    lm.generate(ps[:2], sampling)
    times, out = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        out = lm.generate(ps, sampling)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lab:tiny", help="lab:NAME or a Hugging Face model directory")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=8, help="requests in flight to the server")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads per process")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per backend (the median is shown)")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here too")
    args = ap.parse_args()
    global REPEATS
    REPEATS = args.repeats
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # single-node Ray on 127.0.0.1 only
    console = Console()

    from autoalign.models.hf import HFModel
    from autoalign.models.openai_provider import OpenAIModel
    from tests.backends.servers import TransformersServe

    path = model_dir(args.model)
    ps = prompts(args.prompts)
    sampling = Sampling(n=1, temperature=0.0, max_new_tokens=args.max_new_tokens)
    rows: list[dict] = []

    def record(name: str, seconds: float, out: list, startup: float) -> None:
        tokens = rows[0]["tokens"] if rows else sum(c.num_tokens or 0 for cs in out for c in cs)
        rows.append({"backend": name, "seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds,
                     "startup_s": startup, "texts": [cs[0].text for cs in out]})

    import torch

    default_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    hf = HFModel(path, device="cpu", batch_size=args.prompts)
    startup = time.perf_counter() - t0
    record(f"hf (1 process, {args.threads} thread)", *timed(hf, ps, sampling), startup)

    threads = {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    t0 = time.perf_counter()
    with TransformersServe(path, env=threads) as server:
        lm = OpenAIModel(server.base_url, server.model_name, max_concurrency=args.concurrency)
        startup = time.perf_counter() - t0
        record(f"transformers serve ({args.concurrency} in flight)", *timed(lm, ps, sampling), startup)
        lm.close()

    import ray

    from autoalign.distributed.ray_shard import RayShardedLM

    t0 = time.perf_counter()
    ray.init(num_cpus=args.workers * args.threads, include_dashboard=False, log_to_driver=False)
    try:
        with RayShardedLM(f"hf:{path}", num_workers=args.workers, options={"device": "cpu"}, num_cpus=args.threads,
                          shard_size=math.ceil(args.prompts / args.workers)) as lm:
            lm.fingerprint()  # wait for the replicas to load
            startup = time.perf_counter() - t0
            record(f"hf sharded on Ray ({args.workers} workers)", *timed(lm, ps, sampling), startup)
    finally:
        ray.shutdown()

    torch.set_num_threads(default_threads)
    record(f"hf (1 process, torch default {default_threads} threads)", *timed(hf, ps, sampling), 0.0)

    base = rows[0]["tokens_per_s"]
    same = all(r["texts"] == rows[0]["texts"] for r in rows)
    table = Table(title=f"generation stage: {args.prompts} chat prompts x {args.max_new_tokens} new tokens, greedy, "
                        f"model {args.model}, {os.cpu_count()} CPUs, median of {args.repeats}")
    for col in ("backend", "stage s", "tokens", "tokens/s", "x hf", "start-up s"):
        table.add_column(col, justify="left" if col == "backend" else "right")
    for r in rows:
        table.add_row(r["backend"], f"{r['seconds']:.2f}", str(r["tokens"]), f"{r['tokens_per_s']:.1f}",
                      f"{r['tokens_per_s'] / base:.2f}", f"{r['startup_s']:.1f}")
    console.print(table)
    console.print(f"same texts on every backend: {same}")
    if args.out:
        args.out.write_text(json.dumps({"rows": [{k: v for k, v in r.items() if k != "texts"} for r in rows],
                                        "same_texts": same, "args": {k: str(v) for k, v in vars(args).items()}},
                                       indent=2))


if __name__ == "__main__":
    main()
