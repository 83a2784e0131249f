"""What an inference-time alignment method costs per answer, next to the plain policy's, in one run:

    python benchmarks/decoding_cost.py --model lab:small --prompts 48 [--threads 1] [--max-new-tokens 48]

The same lab eval prompts (balanced over the families) are answered, with the same seed and sampling, by:

- ``plain``: the policy alone;
- ``system_prompt``: the policy with the lab's system prompt in context (the conditioned policy Linear Alignment
  moves toward; no extra model call, a longer prompt);
- ``linear_alignment``: Linear Alignment (Gao et al. 2024) at ``--alpha``: each decoding step runs the model on
  the conditioned and on the plain prompt (two forward passes per token, two KV caches);
- ``self_refine``: Self-Refine (Madaan et al. 2023): the policy's own yes/no critique after each answer and up to
  ``--iterations`` rewrites while it says the answer falls short.

Aligners with inspectors need a run's trained parts: ``python -m autoalign.evaluate.inspectors RUN_DIR`` times the
wrapped policy against the plain one per answer.

Reported per method: wall seconds and CPU seconds of this process per answer (the total over all prompts, after
one warm-up call per method; the CPU-time ratio is the steadier one on a shared machine), tokens generated per
answer over every model call the method makes (answers, critiques, rewrites), tokens of the final answer, model
calls (generate / scoring rows) per answer, and the ratios to ``plain``. Costs only: the methods' 3H effect is what
their recipes' reports measure. torch threads are set explicitly (``--threads``, default 1) and printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoalign.models.base import Completion, Prompt, Sampling  # noqa: E402


class CountingLM:
    """The policy with its calls counted: generate rows and generated tokens, scoring rows (``logprobs``,
    ``choice_logprobs``). Every other attribute is the policy's, so wrappers that need the transformers model
    (Linear Alignment) still get it; their own forward passes are then not counted as calls (said per method)."""

    def __init__(self, lm: Any):
        self._lm = lm
        self.generate_rows = 0
        self.generated_tokens = 0
        self.scored_rows = 0

    def reset(self) -> None:
        self.generate_rows = self.generated_tokens = self.scored_rows = 0

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        out = self._lm.generate(prompts, sampling)
        for row in out:
            for c in row:
                self.generate_rows += 1
                self.generated_tokens += c.num_tokens or 0
        return out

    def logprobs(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        self.scored_rows += len(prompts)
        return self._lm.logprobs(prompts, continuations)

    def choice_logprobs(self, prompts: Sequence[Prompt], choices: Sequence[str]) -> Any:
        self.scored_rows += len(prompts)
        return self._lm.choice_logprobs(prompts, choices)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lm, name)


def measure(name: str, lm: Any, counter: CountingLM, prompts: list[Prompt], sampling: Sampling,
            note: str = "") -> dict[str, Any]:
    """One method's cost; the final answers' tokens are counted with the policy's tokenizer (a rewritten answer's
    ``Completion`` may not carry ``num_tokens``)."""
    tokenizer = counter.tokenizer
    lm.generate(prompts[:1], sampling)  # warm-up (first-call allocations, compiled kernels)
    counter.reset()
    wall, cpu = time.perf_counter(), time.process_time()
    out = lm.generate(prompts, sampling)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = sum(len(row) for row in out)
    answer_tokens = sum(len(tokenizer(c.text, add_special_tokens=False)["input_ids"]) for row in out for c in row)
    generated = counter.generated_tokens if counter.generate_rows else answer_tokens
    return {"method": name, "answers": n, "wall_s_per_answer": wall / n, "cpu_s_per_answer": cpu / n,
            "generated_tokens_per_answer": generated / n, "answer_tokens_per_answer": answer_tokens / n,
            "generate_rows_per_answer": counter.generate_rows / n, "scored_rows_per_answer": counter.scored_rows / n,
            "note": note}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="lab:small")
    ap.add_argument("--prompts", type=int, default=48)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()} (set by --threads)")

    from autoalign.decoding.linear_alignment import LinearAlignedLM
    from autoalign.decoding.self_refine import SelfRefineLM
    from autoalign.decoding.system_prompt import SystemPromptLM
    from autoalign.lab.formats import SYSTEM_PROMPT
    from autoalign.lab.prompts import lab_prompts
    from autoalign.models.registry import load_lm

    policy = load_lm(args.model)
    counter = CountingLM(policy)
    prompts: list[Prompt] = [p.messages for p in lab_prompts(args.prompts, args.seed, split="eval")]
    sampling = Sampling(n=1, temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=args.seed)

    methods: list[tuple[str, Callable[[], Any], str]] = [
        ("plain", lambda: counter, ""),
        ("system_prompt", lambda: SystemPromptLM(counter, SYSTEM_PROMPT, "system-prompt"), ""),
        ("linear_alignment", lambda: LinearAlignedLM(counter, SYSTEM_PROMPT, args.alpha, 1.0),
         "two forward passes per token inside one generate (not counted as calls)"),
        ("self_refine", lambda: SelfRefineLM(counter, None, "judge", 0.5, args.iterations, args.max_new_tokens), ""),
    ]
    rows = [measure(name, make(), counter, prompts, sampling, note) for name, make, note in methods]
    base = rows[0]
    print(f"model {args.model}, {len(prompts)} lab eval prompts, max_new_tokens {args.max_new_tokens}, "
          f"temperature {args.temperature}")
    print(f"{'method':<20} {'wall s/ans':>10} {'cpu s/ans':>10} {'x plain':>8} {'gen tok/ans':>11} "
          f"{'x plain':>8} {'ans tok':>8} {'gen rows':>8} {'scored':>7}")
    for r in rows:
        r["cpu_ratio"] = r["cpu_s_per_answer"] / base["cpu_s_per_answer"]
        r["token_ratio"] = r["generated_tokens_per_answer"] / max(base["generated_tokens_per_answer"], 1e-9)
        print(f"{r['method']:<20} {r['wall_s_per_answer']:>10.4f} {r['cpu_s_per_answer']:>10.4f} "
              f"{r['cpu_ratio']:>8.2f} {r['generated_tokens_per_answer']:>11.1f} {r['token_ratio']:>8.2f} "
              f"{r['answer_tokens_per_answer']:>8.1f} {r['generate_rows_per_answer']:>8.2f} "
              f"{r['scored_rows_per_answer']:>7.2f}" + (f"  ({r['note']})" if r["note"] else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
