"""GRPO training speed and where a step's time goes, as ratios from one run.

    python benchmarks/rl.py [--model lab:small|DIR] [--steps 8] [--prompts 32] [--num-generations 4]
                            [--batch-size 8] [--max-completion-length 32] [--threads 1] [--use-vllm] [--json OUT]

The ``grpo`` phase's own trainer (``autoalign.train.grpo.online_trainer``, TRL's GRPOTrainer) trains on lab prompts
of the verifiable families with the sandbox's execution reward, for ``--steps`` optimizer steps. Timing hooks wrap
the trainer's generation call (``GRPOTrainer._generate``: the policy sampling every completion of the step) and its
reward call (``_calculate_rewards``: the sandbox), and a trainer callback times each whole step; the first step
(allocator, sandbox start-up) is reported apart. The figures are steps per second and the share of step time in
generation, in scoring, and in the rest (log-probs, loss, backward, optimizer), each a ratio within this one run.

torch runs with ``--threads`` intra-op threads (default 1: on 2 shared cores more threads fight over busy cores).
``--use-vllm`` passes TRL's vLLM integration through (``use_vllm: true`` in a phase; a GPU and vllm installed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def model_dir(spec: str) -> Path:
    if spec.startswith("lab:"):
        from autoalign.lab.pretrain import ensure_lab_model

        return Path(ensure_lab_model(spec.removeprefix("lab:"), progress=False))
    return Path(spec)


class Timer:
    """Seconds spent inside wrapped calls, per optimizer step (``mark`` closes a step)."""

    def __init__(self) -> None:
        self.current = 0.0
        self.per_step: list[float] = []

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.current += time.perf_counter() - start

        return timed

    def mark(self) -> None:
        self.per_step.append(self.current)
        self.current = 0.0


def share(part: list[float], whole: list[float]) -> float:
    """sum(part) / sum(whole): the fraction of step time a part took (0 when nothing was timed)."""
    total = sum(whole)
    return sum(part) / total if total > 0 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="lab:small")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--num-generations", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-completion-length", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--use-vllm", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    a = ap.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table
    from transformers.trainer_callback import TrainerCallback

    from autoalign.lab.prompts import lab_prompts
    from autoalign.train.grpo import GRPOPhase, online_trainer

    torch.set_num_threads(a.threads)
    console = Console()
    policy = model_dir(a.model)
    prompts = [p.model_dump() for p in lab_prompts(a.prompts, seed=0,
                                                    families=["arithmetic", "strings", "lists", "code"])]
    cfg = GRPOPhase(batch_size=a.batch_size, num_generations=a.num_generations,
                    max_completion_length=a.max_completion_length, max_steps=a.steps + 1, use_vllm=a.use_vllm)
    gen, score = Timer(), Timer()
    steps: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001 - transformers' signature
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            steps.append(time.perf_counter() - self.start)
            gen.mark()
            score.mark()

    with tempfile.TemporaryDirectory() as tmp:
        trainer, _ = online_trainer(cfg, policy, prompts, tmp, seed=0)
        trainer._generate = gen.wrap(trainer._generate)  # the policy's sampling of the step's completions
        trainer._calculate_rewards = score.wrap(trainer._calculate_rewards)  # the rewards (sandbox)
        trainer.add_callback(StepClock())
        start = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - start

    timed = slice(1, None)  # the first step pays start-up costs: reported apart
    t_steps, t_gen, t_score = steps[timed], gen.per_step[timed], score.per_step[timed]
    rest = [s - g - r for s, g, r in zip(t_steps, t_gen, t_score)]
    figures = {
        "model": a.model, "threads": a.threads, "use_vllm": a.use_vllm, "timed_steps": len(t_steps),
        "completions_per_step": a.batch_size, "max_completion_length": a.max_completion_length,
        "first_step_s": round(steps[0], 3), "median_step_s": round(statistics.median(t_steps), 3),
        "steps_per_s": round(len(t_steps) / sum(t_steps), 4),
        "generation_share": round(share(t_gen, t_steps), 4), "scoring_share": round(share(t_score, t_steps), 4),
        "rest_share": round(share(rest, t_steps), 4), "wall_s": round(wall, 2),
    }
    table = Table(title=f"GRPO on {a.model}: torch.set_num_threads({a.threads}), {a.batch_size} completions x "
                        f"{a.max_completion_length} tokens per step, {len(t_steps)} timed steps")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("steps / s", f"{figures['steps_per_s']:.3f}")
    table.add_row("median step (s)", f"{figures['median_step_s']:.2f}  (first step {figures['first_step_s']:.2f})")
    table.add_row("generation share of step time", f"{100 * figures['generation_share']:.1f}%")
    table.add_row("scoring (sandbox) share", f"{100 * figures['scoring_share']:.1f}%")
    table.add_row("rest (log-probs, loss, backward, optimizer)", f"{100 * figures['rest_share']:.1f}%")
    console.print(table)
    print(json.dumps(figures))
    if a.json:
        a.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
