"""Logprob-scored judging against generative judging: same judge model, same samples, one run.

    nice -n 10 python benchmarks/judging.py --model lab:small --per-family 12 --n 2 [--samples 3] [--reward-model DIR]

The responses are the judge model's own samples (``--n`` per item, temperature 0.9) on the lab's eval split,
graded by the lab oracle (benchmarks may read it; signals never do). Each response is judged under its axis's
principle of the default constitution, in the yes/no format the lab model was pretrained on, by:

- ``logprob``: P(Yes) / (P(Yes) + P(No)) read from one next-token distribution per response
  (``HFModel.choice_logprobs``: one forward row per response, no generation);
- ``logprob-whole``: the same, with the shared-prefix KV cache off (every judge prompt run whole: what
  ``logprob`` saves by computing a batch's common opening, the principle, once);
- ``logprob-rows``: the same quantity from ``lm.logprobs`` (two scored rows per response: a provider without
  ``choice_logprobs``, e.g. an OpenAI-compatible server with echo);
- ``logprob-1row``: P(Yes) alone (one row per response; ``normalise=False``);
- ``generate``: ``--samples`` sampled verdicts (temperature 1), parsed and averaged, as Self-Rewarding LMs does;
  unreadable verdicts are counted.

Reported per path: responses judged per wall-clock second and per CPU-second of this process (median of 3 repeats
of the judging call alone, after a warm-up call; on a shared machine the CPU-time ratio is the steadier one), the
speed ratio to ``generate``, and agreement with the oracle: accuracy of the verdict thresholded at 1/2, balanced
accuracy (mean of the accuracies on oracle-correct and oracle-wrong responses: a judge that always says No scores
1/2), and AUC (threshold-free: P(a correct response outscores a wrong one)).

``--reward-model DIR``: also the pairwise accuracy of a trained reward model on held-out lab pairs (two responses
to one eval item, one correct and one wrong by the oracle), next to the logprob judge's accuracy on those pairs.

``judge_oracle_agreement`` is the per-round measurement the loop can call (evaluation side: it reads the oracle).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoalign.models.base import Sampling  # noqa: E402
from autoalign.signals.model_feedback.constitution import default_constitution  # noqa: E402
from autoalign.signals.model_feedback.judges import JudgeItem, PointwiseJudge  # noqa: E402


def auc(scores: list[float], labels: list[bool]) -> float:
    """Mann-Whitney AUC: P(score of a positive > score of a negative), ties counted half."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def agreement(values: list[float | None], correct: list[bool]) -> dict:
    """Accuracy, balanced accuracy and AUC of judge values against oracle correctness (None values skipped)."""
    rows = [(v, c) for v, c in zip(values, correct) if v is not None]
    if not rows:
        return {"n": 0, "accuracy": float("nan"), "balanced_accuracy": float("nan"), "auc": float("nan")}
    acc = sum((v > 0.5) == c for v, c in rows) / len(rows)
    tpr = [(v > 0.5) for v, c in rows if c]
    tnr = [(v <= 0.5) for v, c in rows if not c]
    parts = [sum(x) / len(x) for x in (tpr, tnr) if x]
    return {"n": len(rows), "accuracy": round(acc, 4), "balanced_accuracy": round(sum(parts) / len(parts), 4),
            "auc": round(auc([v for v, _ in rows], [c for _, c in rows]), 4)}


def judged_samples(lm, per_family: int, n: int, seed: int, max_new_tokens: int = 48):
    """(tasks, questions, responses, oracle correctness) for ``n`` samples of ``lm`` per lab eval item."""
    from autoalign.lab.oracle import eval_items, grade_many

    items = eval_items(per_family, seed)
    outs = lm.generate([[{"role": "user", "content": t.question}] for t in items],
                       Sampling(n=n, temperature=0.9, top_p=0.95, max_new_tokens=max_new_tokens, seed=seed))
    tasks = [t for t, cs in zip(items, outs) for _ in cs]
    responses = [c.text for cs in outs for c in cs]
    grades = grade_many(tasks, responses)
    return tasks, responses, [g.correct for g in grades]


def judge_oracle_agreement(judge_lm, responder_lm=None, per_family: int = 10, n: int = 2, seed: int = 4321,
                           mode: str = "logprob", samples: int = 3) -> dict:
    """The judge's agreement with the lab oracle on ``responder_lm``'s samples (default: the judge's own), under
    each item's axis principle: what self-rewarding tracks per round. Evaluation-side: reads the oracle."""
    tasks, responses, correct = judged_samples(responder_lm or judge_lm, per_family, n, seed)
    const = default_constitution()
    items = [JudgeItem(t.question, r, const.for_axis(t.axis)[0].text) for t, r in zip(tasks, responses)]
    verdicts = PointwiseJudge(judge_lm, const, mode=mode, samples=samples, seed=seed).score(items)
    out = agreement([v.value for v in verdicts], correct)
    out["unparseable"] = sum(v.value is None for v in verdicts)
    out["oracle_correct_share"] = round(sum(correct) / len(correct), 4) if correct else float("nan")
    return out


class RowsOnly:
    """The same model without ``choice_logprobs``: every (prompt, choice) is one scored row of ``lm.logprobs``."""

    def __init__(self, lm):
        self.lm = lm

    def fingerprint(self) -> str:
        return self.lm.fingerprint()

    def generate(self, prompts, sampling):
        return self.lm.generate(prompts, sampling)

    def logprobs(self, prompts, continuations):
        return self.lm.logprobs(prompts, continuations)


class NoSharedPrefix(RowsOnly):
    """The same model's one-row verdicts with the shared-prefix KV cache off: every judge prompt runs whole."""

    def choice_logprobs(self, prompts, choices):
        saved, self.lm.min_shared_prefix = self.lm.min_shared_prefix, 1 << 30
        try:
            return self.lm.choice_logprobs(prompts, choices)
        finally:
            self.lm.min_shared_prefix = saved


def _reward_model_pairs(rm_dir: str, tasks, responses, correct, judge_values) -> dict:
    from autoalign.signals.model_feedback.reward_model import RewardModel, pairwise_accuracy

    by_item: dict[str, list[int]] = {}
    for i, t in enumerate(tasks):
        by_item.setdefault(t.question, []).append(i)
    pairs = []
    for idx in by_item.values():
        good = [i for i in idx if correct[i]]
        bad = [i for i in idx if not correct[i] and responses[i].strip() not in {responses[g].strip() for g in good}]
        if good and bad:
            pairs.append((good[0], bad[0]))
    if not pairs:
        return {"pairs": 0}
    rm = RewardModel(rm_dir)
    q = [[{"role": "user", "content": tasks[g].question}] for g, _ in pairs]
    rc = rm.score(q, [responses[g] for g, _ in pairs])
    rr = rm.score(q, [responses[b] for _, b in pairs])
    jc = [judge_values[g] or 0.0 for g, _ in pairs]
    jr = [judge_values[b] or 0.0 for _, b in pairs]
    return {"pairs": len(pairs), "reward_model_accuracy": round(pairwise_accuracy(rc, rr), 4),
            "logprob_judge_accuracy": round(pairwise_accuracy(jc, jr), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="lab:small", help="judge (and responder) model URI")
    ap.add_argument("--per-family", type=int, default=12)
    ap.add_argument("--n", type=int, default=2, help="responses per eval item")
    ap.add_argument("--samples", type=int, default=3, help="generated verdicts per response (generate path)")
    ap.add_argument("--max-new-tokens", type=int, default=8, help="verdict length cap (generate path)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=4321)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reward-model", default=None)
    args = ap.parse_args()

    import torch

    from autoalign.models.registry import load_lm

    torch.set_num_threads(args.threads)
    lm = load_lm(args.model, batch_size=args.batch_size)
    tasks, responses, correct = judged_samples(lm, args.per_family, args.n, args.seed)
    const = default_constitution()
    items = [JudgeItem(t.question, r, const.for_axis(t.axis)[0].text) for t, r in zip(tasks, responses)]
    paths = {
        "logprob": PointwiseJudge(lm, const, mode="logprob"),  # HFModel.choice_logprobs: one row per response
        "logprob-whole": PointwiseJudge(NoSharedPrefix(lm), const, mode="logprob"),  # no shared-prefix cache
        "logprob-rows": PointwiseJudge(RowsOnly(lm), const, mode="logprob"),
        "logprob-1row": PointwiseJudge(lm, const, mode="logprob", normalise=False),
        "generate": PointwiseJudge(lm, const, mode="generate", samples=args.samples, temperature=1.0,
                                   max_new_tokens=args.max_new_tokens, seed=args.seed),
    }
    results = {}
    for name, judge in paths.items():
        judge.score(items[:4])  # warm-up
        times, cpu = [], []
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            verdicts = judge.score(items)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        seconds, cpu_s = sorted(times)[1], sorted(cpu)[1]
        results[name] = {"seconds": seconds, "per_s": len(items) / seconds, "cpu_s": cpu_s,
                         "per_cpu_s": len(items) / cpu_s, "values": [v.value for v in verdicts],
                         "unparseable": sum(v.value is None for v in verdicts),
                         "unparsed_samples": sum(v.unparsed for v in verdicts),
                         **agreement([v.value for v in verdicts], correct)}
    print(f"judge {args.model}: {len(items)} responses ({args.per_family}/family x {args.n}), "
          f"oracle-correct share {sum(correct) / len(correct):.3f}")
    print(f"{'path':<14}{'wall s':>8}{'resp/s':>8}{'speed':>7}{'cpu s':>8}{'resp/cpu-s':>11}{'speed':>7}"
          f"{'acc':>7}{'bal.acc':>8}{'AUC':>7}{'unparsed':>9}")
    base, base_cpu = results["generate"]["per_s"], results["generate"]["per_cpu_s"]
    for name, r in results.items():
        unp = f"{r['unparseable']}/{r['unparsed_samples']}" if name == "generate" else "-"
        print(f"{name:<14}{r['seconds']:>8.2f}{r['per_s']:>8.1f}{r['per_s'] / base:>6.1f}x{r['cpu_s']:>8.2f}"
              f"{r['per_cpu_s']:>11.1f}{r['per_cpu_s'] / base_cpu:>6.1f}x{r['accuracy']:>7.3f}"
              f"{r['balanced_accuracy']:>8.3f}{r['auc']:>7.3f}{unp:>9}")
    for name in ("logprob", "logprob-whole", "logprob-rows", "logprob-1row"):
        print(f"{name} vs generate ({args.samples} verdicts): {results[name]['per_s'] / base:.1f}x responses/s wall, "
              f"{results[name]['per_cpu_s'] / base_cpu:.1f}x responses per CPU-second")
    diff = max(abs(a - b) for a, b in zip(results["logprob"]["values"], results["logprob-rows"]["values"]))
    print(f"max |logprob - logprob-rows| verdict difference: {diff:.2e} (same quantity, two computations)")
    print("unparsed column (generate): responses with no readable verdict / verdict samples unreadable")
    by_axis = {}
    for axis in ("helpful", "harmless", "honest"):
        idx = [i for i, t in enumerate(tasks) if t.axis == axis]
        by_axis[axis] = agreement([results["logprob"]["values"][i] for i in idx], [correct[i] for i in idx])
    print("logprob judge by axis:", {a: {k: v for k, v in m.items()} for a, m in by_axis.items()})
    if args.reward_model:
        rm = _reward_model_pairs(args.reward_model, tasks, responses, correct, results["logprob"]["values"])
        print(f"reward model on held-out lab pairs (eval split, oracle-labelled): {rm}")
    if any(math.isnan(r["auc"]) for r in results.values()):
        print("(AUC is nan when every response is correct or every one wrong)")


if __name__ == "__main__":
    main()
