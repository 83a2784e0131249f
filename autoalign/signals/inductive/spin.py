"""SPIN, Self-Play Fine-Tuning (Chen et al. 2024, arXiv 2401.01335): each iteration the previous model theta_t
answers the SFT prompts; the SFT answer is chosen and theta_t's own answer rejected, and theta_{t+1} is trained
on those pairs with SPIN's logistic loss (``autoalign.train.spin``: TRL's DPO sigmoid loss with beta = lambda).
Filed under the inductive-bias source: past the SFT data, the only signal is the model playing against itself.

The SFT answers (``target``): a model's greedy answer (for the lab: ``lab:teacher``, the stronger model whose
answers stand in for human SFT data) or a user's SFT file (``targets: PATH``, JSONL of TRL ``messages`` rows,
matched to the round's prompts by the last user turn). The loop's samples of the round's policy are theta_t's
answers.

When does SPIN stop? At its fixed point p_theta = p_data (Theorem 5.4) the player cannot tell its answers from the
targets. Two readings, both in ``stats`` and both a stop rule (``spin_stop``, pure): the share of prompts whose
own answer already equals the target (``identical_share`` >= ``stop_identical``), and the previous round's TRL
reward accuracy on its pairs falling to chance (the ``spin`` phase's ``indistinguishable`` verdict, read from the
run's previous train stage). A stopped round writes no pairs, so nothing trains.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

from autoalign.answers import normalise
from autoalign.errors import UserError
from autoalign.models.base import LM, Sampling
from autoalign.records import Label, Preference, Prompt, Sample
from autoalign.signals.base import SignalResult, StageContext
from autoalign.signals.model_feedback.common import ModelRef, known_samples


def spin_stop(identical_share: float, previous_accuracy: float | None, stop_identical: float,
              stop_accuracy: float | None) -> str | None:
    """Why SPIN stops this round (None: go on). The player's answers already equal the targets on at least
    ``stop_identical`` of the prompts, or last round's trained model told targets from answers no better than
    ``stop_accuracy`` (TRL ``rewards/accuracies``; 0.5 is chance)."""
    if identical_share >= stop_identical:
        return f"answers equal the targets on {identical_share:.0%} of prompts"
    if previous_accuracy is not None and stop_accuracy is not None and previous_accuracy <= stop_accuracy:
        return f"last round's reward accuracy {previous_accuracy:.3f} <= {stop_accuracy}"
    return None


def previous_separation(ctx: StageContext | None) -> dict | None:
    """The ``spin`` phase's figures of the previous round (``round-<k-1>/train/manifest.json``, beside this
    round's directory), or None (round 1, no spin phase, not in a run)."""
    if ctx is None or ctx.round <= 1:
        return None
    path = ctx.dir.parents[1].parent / f"round-{ctx.round - 1}" / "train" / "manifest.json"
    try:
        metrics = json.loads(path.read_text()).get("metrics", {})
    except (OSError, ValueError):
        return None
    found = [v for v in metrics.values() if isinstance(v, dict) and "indistinguishable" in v]
    return found[-1] if found else None


def read_targets(path: str) -> dict[str, str]:
    """A user's SFT file: last user turn -> the assistant answer that follows it."""
    out: dict[str, str] = {}
    try:
        lines = Path(path).expanduser().read_text().splitlines()
    except OSError as exc:
        raise UserError(f"spin targets {path}: {exc.strerror}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            msgs = json.loads(line)["messages"]
            users = [m["content"] for m in msgs if m["role"] == "user"]
            answer = next(m["content"] for m in reversed(msgs) if m["role"] == "assistant")
        except (ValueError, KeyError, TypeError, StopIteration):
            raise UserError(f"spin targets {path}:{n}: not a messages row with a user and an assistant turn") from None
        out[users[-1]] = answer
    return out


class SPIN:
    """``target``: the model whose greedy answers are the SFT answers (a URI); ``targets``: a user's SFT file
    instead. ``max_per_prompt``: own answers (distinct) paired with the target per prompt. ``stop_identical`` /
    ``stop_accuracy``: the stop rule (``spin_stop``)."""

    name = "spin"

    def __init__(self, target: str = "lab:teacher", targets: str | None = None, max_per_prompt: int = 1,
                 max_new_tokens: int = 48, stop_identical: float = 0.9, stop_accuracy: float | None = 0.55,
                 seed: int = 0, load_lm: Callable | None = None):
        if max_per_prompt < 1 or max_new_tokens < 1:
            raise ValueError("max_per_prompt and max_new_tokens must be >= 1")
        self.target = ModelRef(target, load_lm, "target")
        self.targets_file = targets
        self._file: dict[str, str] | None = None
        self.max_per_prompt, self.stop_identical, self.stop_accuracy = max_per_prompt, stop_identical, stop_accuracy
        self.sampling = Sampling(n=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=seed)

    def sft_answers(self, prompts: Sequence[Prompt], policy: LM) -> list[str | None]:
        if self.targets_file is not None:
            if self._file is None:
                self._file = read_targets(self.targets_file)
            return [self._file.get(p.text) for p in prompts]
        outs = self.target.get(policy).generate([p.messages for p in prompts], self.sampling)
        return [cs[0].text.strip() or None for cs in outs]

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        groups = known_samples(prompts, samples)
        asked = [p for p in prompts if p.id in groups]
        answers = self.sft_answers(asked, policy)
        out = SignalResult()
        identical = with_target = 0
        pairs: list[Preference] = []
        for p, target in zip(asked, answers):
            if target is None:
                continue
            with_target += 1
            own = groups[p.id]
            same = [normalise(s.text) == normalise(target) for s in own]
            identical += same[0]
            used: set[str] = set()
            for s, eq in zip(own, same):
                pick = not eq and s.text.strip() and s.text.strip() not in used and len(used) < self.max_per_prompt
                if pick:
                    used.add(s.text.strip())
                    pairs.append(Preference(prompt_id=p.id, prompt=p.messages, chosen=target, rejected=s.text,
                                            signal=self.name))
                out.labels.append(Label(prompt_id=p.id, sample_index=s.index, signal=self.name,
                                        verdict="equals_target" if eq else "rejected", score=0.0, kind="none",
                                        selected=False, detail={"target": target}))
        share = identical / with_target if with_target else 0.0
        prev = previous_separation(ctx)
        prev_acc = prev.get("reward_accuracy") if prev else None
        stop = spin_stop(share, prev_acc, self.stop_identical, self.stop_accuracy)
        out.preferences = [] if stop else pairs
        out.stats = {"prompts": len(prompts), "with_target": with_target, "identical_share": round(share, 4),
                     "pairs": len(out.preferences), "previous_reward_accuracy": prev_acc,
                     "previous_reward_margin": prev.get("reward_margin") if prev else None,
                     "stopped": stop}
        return out
