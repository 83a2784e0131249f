"""ReST-EM (Singh et al. 2023, "Beyond Human Data"): expectation-maximisation for RL with a binary verifier, as a
signal (DESIGN.md, "model feedback: outcome verifiers").

Each iteration (a round of the loop):

- **E-step** (Generate, sec. 3): the latest policy samples several solutions per problem (the round's samples);
  the verifier gives each a binary reward; the solutions with reward 1 are kept, at most ``max_per_prompt`` per
  problem (the paper caps solutions per problem, 10 for MATH, so easy problems do not dominate the data);
- **M-step** (Improve): maximise the reward-weighted log-likelihood of the kept solutions. With a binary reward that
  is SFT on the correct ones, and the paper fine-tunes **the base model** every iteration, not the previous
  iteration's model, to limit overfitting: the recipe sets ``train.start_from: base`` (``autoalign.loop``), so
  round k's training starts from the recipe's policy while its samples come from round k-1's policy.

The verifier is the environment (``ExecutionCheck``: calculator, interpreter, unit tests), never the lab's ground
truth. Labels: one per checked sample (``kind="unit"``, 1/0, ``selected`` for the kept ones).
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from autoalign.models.base import LM
from autoalign.records import Label, Prompt, Sample, SFTExample
from autoalign.signals.base import SignalResult, StageContext
from autoalign.signals.environment.execution import ExecutionCheck, check_by_prompt


def kept_solutions(texts: Sequence[str], rewards: Sequence[float], cap: int) -> list[int]:
    """Indices of the solutions ReST-EM's E-step keeps for one problem: reward 1 (binary: r(x, y) = 1), distinct
    texts, the first ``cap`` in sample order (Singh et al. 2023, sec. 3: at most a fixed number per problem)."""
    kept: list[int] = []
    seen: set[str] = set()
    for i, (text, r) in enumerate(zip(texts, rewards, strict=True)):
        if r == 1.0 and text not in seen and len(kept) < cap:
            kept.append(i)
            seen.add(text)
    return kept


class ReSTEM:
    """ReST-EM's E-step on the round's samples: verify each by execution, keep at most ``max_per_prompt``
    distinct correct solutions per prompt as SFT targets (the M-step's data). ``timeout_s`` / ``memory_mb`` /
    ``workers``: the sandbox's limits."""

    name = "rest_em"

    def __init__(self, max_per_prompt: int = 4, timeout_s: float = 5.0, memory_mb: int = 512,
                 workers: int | None = None) -> None:
        if max_per_prompt < 1:
            raise ValueError("rest_em: max_per_prompt must be >= 1")
        if timeout_s <= 0 or memory_mb <= 0:
            raise ValueError("rest_em: timeout_s and memory_mb must be positive")
        self.max_per_prompt = max_per_prompt
        self.check = ExecutionCheck(timeout_s=timeout_s, memory_mb=memory_mb, workers=workers)

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM | None = None,
                 ctx: StageContext | None = None) -> SignalResult:
        stats: Counter[str] = Counter()
        todo, by_prompt = check_by_prompt(prompts, samples, self.check, stats)

        out = SignalResult()
        for p, group in todo:
            mine = by_prompt[p.id]
            if any(not sc.ok for sc in mine):  # the environment itself failed: no verdict
                stats["skipped_env_failed"] += 1
                continue
            stats["checked_prompts"] += 1
            rewards = [float(sc.value or 0.0) for sc in mine]
            keep = set(kept_solutions([s.text for s in group], rewards, self.max_per_prompt))
            stats["correct_samples"] += int(sum(rewards))
            stats["solved_prompts"] += int(any(r == 1.0 for r in rewards))
            for i, (s, r, sc) in enumerate(zip(group, rewards, mine)):
                out.labels.append(Label(prompt_id=p.id, sample_index=s.index, signal=self.name,
                                        verdict="correct" if r == 1.0 else "incorrect", score=r, kind="unit",
                                        selected=i in keep, detail=dict(sc.detail)))
            out.sft.extend(SFTExample(prompt_id=p.id, signal=self.name,
                                      messages=[*p.messages, {"role": "assistant", "content": group[i].text}])
                           for i in sorted(keep))
        n, checked = len(out.labels), stats["checked_prompts"]
        out.stats = {
            "prompts": len(prompts), "checked_prompts": checked, "samples_checked": n,
            "correct_samples": stats["correct_samples"],
            "accuracy": round(stats["correct_samples"] / n, 6) if n else 0.0,
            # pass@n of the round's policy on its training problems: the E-step's coverage
            "solved_prompts": stats["solved_prompts"],
            "solve_rate": round(stats["solved_prompts"] / checked, 6) if checked else 0.0,
            "sft": len(out.sft), "skipped_no_env": stats["skipped_no_env"],
            "skipped_no_samples": stats["skipped_no_samples"], "skipped_env_failed": stats["skipped_env_failed"],
        }
        return out


__all__ = ["ReSTEM", "kept_solutions"]
