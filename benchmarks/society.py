"""Agent-turns per second of the simulated society (``autoalign.signals.society.society``): one batched call per
turn and model (what the signal does) against one call per agent-turn, same society, questions and seed.

Prints both rates and their ratio, measured in the same run (machines are noisy; compare ratios). Threads are set
explicitly (``--threads``, default 1) and printed.
    python benchmarks/society.py --model lab:tiny --questions 32 --agents 3
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="lab:tiny", help="the policy's and every agent's model")
    ap.add_argument("--questions", type=int, default=32)
    ap.add_argument("--agents", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from autoalign.lab.prompts import lab_prompts
    from autoalign.models.base import Sampling
    from autoalign.models.registry import load_lm
    from autoalign.records import Sample
    from autoalign.signals.society.society import Simulation, SocietyConfig

    lm = load_lm(args.model, batch_size=args.batch_size)
    prompts = lab_prompts(args.questions, seed=0, split="train")
    drafts = lm.generate([p.messages for p in prompts], Sampling(n=1, temperature=0.9, max_new_tokens=32, seed=0))
    items = [(p, Sample(prompt_id=p.id, index=0, text=d[0].text, model=args.model)) for p, d in zip(prompts, drafts)]
    cfg = SocietyConfig.model_validate({
        "agents": [{"name": f"agent-{i}", "model": args.model, "max_new_tokens": args.max_new_tokens}
                   for i in range(args.agents)],
        "grid": 3, "radius": 2, "raters": args.agents, "revise_max_new_tokens": args.max_new_tokens})

    def timed(batched: bool) -> tuple[float, int, int]:
        sim = Simulation(cfg, lm, lambda uri: lm, seed=0)
        t0 = time.perf_counter()
        sim.interact(items, batched=batched)
        return time.perf_counter() - t0, sum(sim.log.agent_turns.values()), sum(sim.log.calls.values())

    Simulation(cfg, lm, lambda uri: lm, seed=0).interact(items[:2])  # warm-up
    t_b, turns_b, calls_b = timed(True)
    t_s, turns_s, calls_s = timed(False)
    print(f"model {args.model}: {args.questions} questions x {args.agents} neighbours, <= {args.max_new_tokens} new "
          f"tokens, torch threads {torch.get_num_threads()}")
    print(f"{'path':<26}{'seconds':>10}{'calls':>8}{'agent-turns':>13}{'turns/s':>10}")
    print(f"{'one call per agent-turn':<26}{t_s:>10.2f}{calls_s:>8}{turns_s:>13}{turns_s / t_s:>10.1f}")
    print(f"{'batched per model+turn':<26}{t_b:>10.2f}{calls_b:>8}{turns_b:>13}{turns_b / t_b:>10.1f}")
    print(f"speed-up (agent-turns/s ratio): {(turns_b / t_b) / (turns_s / t_s):.1f}x")


if __name__ == "__main__":
    main()
