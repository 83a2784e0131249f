"""Math-Shepherd-style process supervision (Wang et al. 2024): step labels from Monte-Carlo rollouts, a process
reward model (PRM) trained on them with TRL, best-of-n reranking by the weakest step, and step-level rewards.

1. **Step labels without people** (sec. 3.3): a sampled solution is cut into steps (``split_steps``: one sentence
   each, before ``The answer is``); from each prefix s_1..s_i the policy completes the solution ``rollouts`` times
   and the environment verifies each completion's final answer (``ExecutionCheck``: the calculator or the
   interpreter, never the lab's ground truth); the sampled solution itself counts as one more completion from
   each of its prefixes. The step's label is whether any completion reached the verified
   answer (hard estimation, HE) or the fraction that did (soft, SE): ``mc_step_labels``.
2. **The PRM** (TRL 1.16 has no PRMTrainer): TRL's RewardTrainer (``autoalign.train.reward``) on pairs of prefixes of
   one prompt, a prefix labelled good preferred to one labelled bad (same depth first: ``step_pairs``), so the
   reward of a prefix ranks how likely it is to still reach a right answer.
3. **Uses**: the solution's score is its weakest step, min_i r(s_1..s_i) (sec. 3.4, eq. 4: a solution is as good as
   its worst step): ``weakest_step``, ``rerank``. The signal keeps each prompt's best sample by that score as an SFT
   target (best-of-n verification by the PRM); ``ProcessRewardScorer`` is the same score as a Scorer, so a GRPO
   phase can use it as a step-level reward (``{scorer: process_reward, path: <the PRM directory>}``).

The PRM is an artifact of the round's signals stage (kind ``process_reward_model``).
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from autoalign.errors import UserError
from autoalign.models.base import LM, Sampling
from autoalign.records import Label, Preference, Prompt, Sample, SFTExample, preference_rows, stable_id
from autoalign.scoring import Score, as_prompts
from autoalign.signals.base import Artifact, SignalResult, StageContext, group_samples
from autoalign.signals.environment.execution import ExecutionCheck

PRM = "process_reward_model"
_ANSWER = re.compile(r"the answer is", re.IGNORECASE)


# ---- pure functions ---------------------------------------------------------------------------------------------
def split_steps(text: str) -> list[str]:
    """The steps of a solution: its sentences before ``The answer is`` (a sentence ends at ``. `` after a digit
    or ``]``, the lab's step convention), each ending with its full stop; the answer sentence is not a step."""
    body = _ANSWER.split(text, maxsplit=1)[0]
    parts = (s.strip() for s in re.split(r"(?<=[\d\]])\.(?:\s+|$)", body))
    return [s + "." for s in parts if s and s[-1] in "0123456789]"]  # a sentence that states a value


def prefixes(steps: Sequence[str]) -> list[str]:
    """s_1, s_1 s_2, ..., s_1..s_K: the prefix ending at each step (steps joined by a space)."""
    return [" ".join(steps[: i + 1]) for i in range(len(steps))]


def mc_step_labels(reached: Sequence[Sequence[bool]], soft: bool = False) -> list[float]:
    """Each step's label from its Monte-Carlo completions (``reached[i][j]``: completion j from the prefix ending
    at step i reached the verified answer). Math-Shepherd (Wang et al. 2024, sec. 3.3): hard estimation
    y_i = 1 if any completion reaches the answer else 0; soft estimation y_i = (1/N) sum_j 1[a_j = a*]."""
    if soft:
        return [sum(r) / len(r) if r else 0.0 for r in reached]  # SE: y_i = sum_j 1[a_j = a*] / N
    return [1.0 if any(r) else 0.0 for r in reached]  # HE: y_i = 1 iff some a_j = a*


def weakest_step(step_scores: Sequence[float]) -> float:
    """A solution's score: its weakest step, min_i r(s_1..s_i) (Wang et al. 2024, sec. 3.4, eq. 4)."""
    if not step_scores:
        raise ValueError("weakest_step: a solution needs at least one step score")
    return min(step_scores)  # Math-Shepherd eq. 4: the minimum over the steps


def rerank(step_scores: Sequence[Sequence[float]]) -> int:
    """Best-of-n by the weakest step: the index of the solution whose weakest step scores highest (the first on a
    tie)."""
    if not step_scores:
        raise ValueError("rerank: no solutions")
    worst = [weakest_step(s) for s in step_scores]
    return max(range(len(worst)), key=lambda i: (worst[i], -i))


def step_pairs(items: Sequence[tuple[int, str, float]], cap: int) -> list[tuple[str, str]]:
    """PRM training pairs of one prompt from (depth, prefix, label) items: (a prefix labelled good, one labelled
    bad), closest depths first (the same step of two solutions is the cleanest contrast), at most ``cap``, each
    prefix in as few pairs as the cap allows; deterministic in the items' order."""
    good = [(d, p) for d, p, y in items if y >= 0.5]
    bad = [(d, p) for d, p, y in items if y < 0.5]
    cands = sorted(((abs(dg - db), i, j) for i, (dg, _) in enumerate(good) for j, (db, _) in enumerate(bad)))
    out: list[tuple[str, str]] = []
    used: Counter[tuple[str, int]] = Counter()
    for _, i, j in sorted(cands, key=lambda c: (c[0], used[("g", c[1])] + used[("b", c[2])])):
        if len(out) >= cap:
            break
        pair = (good[i][1], bad[j][1])
        if pair[0] != pair[1] and pair not in out:
            out.append(pair)
            used[("g", i)] += 1
            used[("b", j)] += 1
    return out


# ---- the PRM as a Scorer ----------------------------------------------------------------------------------------
class ProcessRewardScorer:
    """A trained PRM (a reward-model directory) as a Scorer: value = the weakest step's reward, min over the
    response's prefixes (a response without steps: the whole response); ``scale = "reward"``. ``detail`` keeps
    every step's reward."""

    scale = "reward"

    def __init__(self, path: str | Path, batch_size: int = 32) -> None:
        from autoalign.signals.model_feedback.reward_model import RewardModel

        self.rm = RewardModel(path, batch_size=batch_size)
        self.name = f"process_reward:{Path(path).name}"

    def step_scores(self, prompts: Sequence[Any], responses: Sequence[str]) -> list[list[float]]:
        records = as_prompts(prompts)
        cut = [prefixes(split_steps(r)) or [r] for r in responses]
        flat = [(p.messages, x) for p, xs in zip(records, cut, strict=True) for x in xs]
        scores = iter(self.rm.score([m for m, _ in flat], [x for _, x in flat])) if flat else iter([])
        return [[next(scores) for _ in xs] for xs in cut]

    def __call__(self, prompts: Sequence[Any], responses: Sequence[str]) -> list[Score]:
        return [Score(weakest_step(s), detail={"steps": [round(v, 4) for v in s]})
                for s in self.step_scores(prompts, responses)]


# ---- the signal -------------------------------------------------------------------------------------------------
class ProcessReward:
    """Label the steps of the round's samples by Monte-Carlo rollouts (``rollouts`` completions per prefix, at
    most ``max_steps`` steps per solution, ``soft`` estimation or hard), train a PRM on prefix pairs (at most
    ``pairs_per_prompt`` per prompt, at least ``min_pairs`` in all, else no PRM and no data; ``rm_epochs``,
    ``rm_learning_rate``, ``rm_batch_size``), then keep each prompt's best sample *with steps* by its weakest step
    as an SFT target (``min_score``: only when that score is at least this). ``temperature`` / ``max_new_tokens`` / ``seed``: the rollouts' sampling.

    ``rollouts``: completions sampled from each step prefix; ``max_steps``: steps labelled per solution at most;
    ``soft``: a step's label is the share of rollouts that reach the answer (false: 1 when any does);
    ``min_pairs``: the fewest prefix pairs a PRM is trained on (fewer: no PRM and no data this round)."""

    name = "process_reward"

    def __init__(self, rollouts: int = 4, max_steps: int = 4, soft: bool = False, pairs_per_prompt: int = 8,
                 min_pairs: int = 16, rm_epochs: float = 2.0, rm_learning_rate: float = 1e-4, rm_batch_size: int = 16,
                 min_score: float | None = None, temperature: float = 0.8, max_new_tokens: int = 32,
                 seed: int = 0) -> None:
        if rollouts < 1 or max_steps < 1 or pairs_per_prompt < 1:
            raise ValueError("process_reward: rollouts, max_steps and pairs_per_prompt must be >= 1")
        if temperature < 0 or max_new_tokens < 1:
            raise ValueError("process_reward: temperature must be >= 0 and max_new_tokens >= 1")
        self.rollouts, self.max_steps, self.soft, self.pairs_per_prompt = rollouts, max_steps, soft, pairs_per_prompt
        self.min_pairs = max(2, min_pairs)
        self.rm_epochs, self.rm_learning_rate, self.rm_batch_size = rm_epochs, rm_learning_rate, rm_batch_size
        self.min_score, self.temperature, self.max_new_tokens, self.seed = min_score, temperature, max_new_tokens, seed
        self.check = ExecutionCheck()

    def label_steps(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
                    stats: Counter[str]) -> dict[tuple[str, int], list[tuple[str, float]]]:
        """(prompt id, sample index) -> [(prefix, label)] for every verifiable sample with steps."""
        render = getattr(policy, "render", None)
        if not callable(render):
            raise UserError("process_reward: the policy cannot continue a partial answer (a provider with a "
                            "chat template on this side, e.g. hf: or lab:, is needed for Monte-Carlo rollouts)")
        by_id, groups = {p.id: p for p in prompts}, group_samples(samples)
        jobs: list[tuple[Prompt, Sample, int, str]] = []
        for pid, group in groups.items():
            p = by_id.get(pid)
            if p is None or p.env is None or p.env.get("kind") not in ("calc", "python_expr"):
                stats["skipped_not_verifiable"] += len(group)
                continue
            for s in group:
                steps = split_steps(s.text)[: self.max_steps]
                if not steps:
                    stats["skipped_no_steps"] += 1
                for i, prefix in enumerate(prefixes(steps)):
                    jobs.append((p, s, i, prefix))
        if not jobs:
            return {}
        # every prefix's rollouts in one batched call: the rendered prompt + the prefix, continued by the policy
        texts = [render(p.messages) + prefix + " " for p, _, _, prefix in jobs]
        sampling = Sampling(n=self.rollouts, temperature=self.temperature, max_new_tokens=self.max_new_tokens,
                            seed=int(stable_id(str(self.seed), "prm-rollouts"), 16) % (2**31))
        outs = policy.generate(texts, sampling)
        flat = [(p, prefix + " " + c.text) for (p, _, _, prefix), comps in zip(jobs, outs) for c in comps]
        # the sample itself is one more completion from each of its own prefixes: verified once, counted at each
        own = {(p.id, s.index): (p, s.text) for p, s, _, _ in jobs}
        verdicts = self.check([p for p, _ in flat] + [p for p, _ in own.values()],
                              [t for _, t in flat] + [t for _, t in own.values()])
        it = iter(verdicts[: len(flat)])
        solved = {key: sc.value == 1.0 for key, sc in zip(own, verdicts[len(flat):])}
        labelled: dict[tuple[str, int], list[tuple[str, float]]] = {}
        reached: dict[tuple[str, int], list[list[bool]]] = {}
        for p, s, _, prefix in jobs:
            got = [next(it).value == 1.0 for _ in range(self.rollouts)] + [solved[(p.id, s.index)]]
            reached.setdefault((p.id, s.index), []).append(got)
            labelled.setdefault((p.id, s.index), []).append((prefix, 0.0))
        for key, rows in reached.items():
            ys = mc_step_labels(rows, self.soft)
            labelled[key] = [(prefix, y) for (prefix, _), y in zip(labelled[key], ys)]
            stats["steps_labelled"] += len(ys)
            stats["steps_good"] += sum(y >= 0.5 for y in ys)
        stats["rollouts"] = len(flat)
        return labelled

    def train_prm(self, prompts: Sequence[Prompt], labelled: dict[tuple[str, int], list[tuple[str, float]]],
                  policy: LM, out: Path, stats: Counter[str]) -> Path | None:
        """The PRM trained on prefix pairs (saved to ``out/model``), or None with fewer than ``min_pairs``."""
        by_id = {p.id: p for p in prompts}
        per_prompt: dict[str, list[tuple[int, str, float]]] = {}
        for (pid, _), rows in sorted(labelled.items()):
            per_prompt.setdefault(pid, []).extend((d, prefix, y) for d, (prefix, y) in enumerate(rows))
        prefs = [Preference(prompt_id=pid, prompt=by_id[pid].messages, chosen=c, rejected=r, signal=self.name)
                 for pid, items in per_prompt.items() for c, r in step_pairs(items, self.pairs_per_prompt)]
        stats["prm_pairs"] = len(prefs)
        if len(prefs) < self.min_pairs:
            return None
        base = getattr(policy, "path", None)
        if base is None:
            raise UserError("process_reward: the policy has no local weights to start a process reward model from")
        from autoalign.train.reward import train_reward_model

        metrics = train_reward_model(base, preference_rows(prefs), out, seed=self.seed, epochs=self.rm_epochs,
                                     learning_rate=self.rm_learning_rate, batch_size=self.rm_batch_size)
        stats["prm_train_steps"] = int(metrics["steps"])
        return out / "model"

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        stats: Counter[str] = Counter()
        labelled = self.label_steps(prompts, samples, policy, stats)
        out_dir = ctx.artifact_dir(f"{self.name}/prm") if ctx is not None else Path(tempfile.mkdtemp(prefix="prm-"))
        prm_dir = self.train_prm(prompts, labelled, policy, out_dir, stats)
        if prm_dir is None:  # nothing to contrast: every labelled step was good, or every one bad
            return SignalResult(stats={**dict(stats), "prompts": len(prompts), "sft": 0,
                                       "warning": f"only {stats['prm_pairs']} step pairs (min_pairs "
                                                  f"{self.min_pairs}): no process reward model trained, no data "
                                                  "(use more prompts, samples or rollouts)"})
        scorer = ProcessRewardScorer(prm_dir)
        by_id, groups = {p.id: p for p in prompts}, group_samples(samples)
        result = SignalResult()
        for pid, group in groups.items():
            if pid not in by_id or not group:
                continue
            p = by_id[pid]
            # only answers with steps are reranked: the PRM has seen prefixes of steps, nothing else (a deflection
            # or a bare answer would be scored out of its distribution, and could win)
            stepped = [s for s in group if split_steps(s.text)]
            for s in group:
                if s not in stepped:
                    result.labels.append(Label(prompt_id=pid, sample_index=s.index, signal=self.name,
                                               verdict="no_steps", score=0.0, kind="none", selected=False))
            if not stepped:
                stats["prompts_without_steps"] += 1
                continue
            per_step = scorer.step_scores([p] * len(stepped), [s.text for s in stepped])
            best = rerank(per_step)
            for i, (s, sc) in enumerate(zip(stepped, per_step)):
                chosen = i == best and (self.min_score is None or weakest_step(sc) >= self.min_score)
                result.labels.append(Label(prompt_id=pid, sample_index=s.index, signal=self.name,
                                           verdict="kept" if chosen else "dropped", score=weakest_step(sc),
                                           kind="reward", selected=chosen,
                                           detail={"steps": [round(v, 4) for v in sc],
                                                   "mc_labels": [y for _, y in labelled.get((pid, s.index), [])]}))
                if chosen:
                    result.sft.append(SFTExample(prompt_id=pid, signal=self.name,
                                                 messages=[*p.messages, {"role": "assistant", "content": s.text}]))
        result.stats = {**dict(stats), "prompts": len(prompts), "scored": len(result.labels), "sft": len(result.sft)}
        if ctx is not None:
            result.artifacts = {PRM: Artifact(kind=PRM, path=prm_dir.relative_to(ctx.dir).as_posix())}
        return result


__all__ = ["PRM", "ProcessReward", "ProcessRewardScorer", "mc_step_labels", "prefixes", "rerank", "split_steps",
           "step_pairs", "weakest_step"]
