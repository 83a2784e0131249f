"""Instruction back-translation (Humpback, Li et al. 2024): unlabelled texts are treated as responses, a backward
model writes the instruction each one answers (self-augmentation, sec. 2.2), a judge rates each (instruction,
response) pair and only the best are kept (self-curation, sec. 2.3); the kept pairs are SFT examples.

Why a signal, not a prompt writer: the training target is the unlabelled text itself, not the policy's answer to
a prompt, so the data never passes through the round's sampling stage; the signal ignores the round's samples
(evaluation still grades them) and emits SFT examples like ``distill_sft``. Texts come from the same table as
PPO-ptx's (``methods.PTX_SOURCES``: ``lab``, the lab corpus generator's documents and transcripts, or ``file``, a
user's JSONL of ``{"text": ...}``), drawn anew each round from the round's seed; a signal never imports the lab.

Steps and their rules (each pure and hand-tested):

- ``as_response``: a text is a response as it stands, except that a chat transcript gives its last assistant turn
  (the rest, the user turn, is dropped, never used: the instruction is what back-translation predicts) and chat
  markers are removed; responses outside ``min_words``..``max_words`` words, and repeats, are dropped;
- self-augmentation: the backward model (``backward_model``: ``policy``, the round's policy, as in the paper's
  self-training, or a model URI) is asked for the request the response answers (``BACKWARD_PROMPT``), greedy, and
  its first line is the instruction (``parse_instruction``). With ``train_backward`` it is first fine-tuned (TRL's
  SFTTrainer, ``autoalign.train.sft``) on seed (output, instruction) pairs, as the paper's M_yx (sec. 2.1): here the
  round's prompts and the policy's first sample of each, since no person labels seed data; the model is an artifact
  of the stage (kind ``backward_model``). Prompted only, a small lab model was never taught this turn: it answers
  the response rather than asking for it ("I can't help with that.", "The answer is grey."), and curation is then
  what decides whether anything trains;
- self-curation (``curate``): the judge (default ``lab:teacher``) scores each pair as a ``Scorer`` does, either
  P(Yes) that the text answers the instruction under the constitution's ``principle`` (``format: yes_no``) or the
  paper's 5-point rating (``format: rubric5``, points / 5); a pair is kept when its score is at least ``threshold``
  (the paper keeps score 5, i.e. 1.0 with rubric5), and with ``top_fraction`` only the best that fraction of the
  scored pairs. Every decision, with the instruction and score, is written to ``curation.jsonl`` in the signal's
  stage directory.
"""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path
from typing import Callable, Literal, Sequence

from autoalign import methods
from autoalign.errors import UserError
from autoalign.models.base import LM, Sampling
from autoalign.records import SFTExample, stable_id
from autoalign.signals.base import Artifact, SignalResult, StageContext
from autoalign.signals.model_feedback.common import ModelRef, check_choice, constitution_from
from autoalign.signals.model_feedback.judges import JudgeItem, PointwiseJudge

BACKWARD = "backward_model"
BACKWARD_PROMPT = "Here is a response:\n{response}\nWrite the request that this response answers."
_MARKER = re.compile(r"<\|[a-z_]+\|>")
_ASSISTANT = "<|assistant|>"
_LABEL = re.compile(r"^(?:request|instruction|question|user|task)\s*:\s*", re.IGNORECASE)


def as_response(text: str) -> str:
    """The response a text stands for: the last assistant turn of a chat transcript, else the text itself; chat
    markers removed, whitespace collapsed."""
    if _ASSISTANT in text:
        text = text.rsplit(_ASSISTANT, 1)[1]
    return " ".join(_MARKER.sub(" ", text).split())


def parse_instruction(text: str) -> str:
    """The instruction a backward model wrote: its first non-empty line, without a ``Request:``-like label."""
    for line in text.strip().splitlines():
        if line.strip():
            return _LABEL.sub("", line.strip()).strip()
    return ""


def curate(scores: Sequence[float | None], threshold: float, top_fraction: float | None = None) -> list[bool]:
    """Humpback's self-curation rule: keep a pair whose score is at least ``threshold`` (a missing score never);
    with ``top_fraction``, also only among the best ``ceil(top_fraction * scored)`` pairs (earlier pairs first on
    ties)."""
    keep = [s is not None and s >= threshold for s in scores]
    if top_fraction is not None:
        scored = [(-s, i) for i, s in enumerate(scores) if s is not None]
        best = {i for _, i in sorted(scored)[: math.ceil(top_fraction * len(scored))]}
        keep = [k and i in best for i, k in enumerate(keep)]
    return keep


class Backtranslation:
    """``source``: where the texts come from, a row of ``methods.PTX_SOURCES`` (``lab``: the lab corpus generator;
    ``file``: a JSONL file). ``path``: the JSONL file of ``{"text": ...}`` rows of ``source: file``. ``count``: texts
    drawn per round. ``backward_model``: the model that writes each text's instruction, ``policy`` (the round's
    policy) or a URI. ``judge``: the curating judge, a URI or ``policy``. ``format``: ``yes_no`` (P(Yes)) or
    ``rubric5`` (the 5-point rating, points / 5). ``mode``: ``logprob`` (one scoring call) or ``generate`` (sampled
    verdicts). ``principle``: the id of the constitution principle the pair is judged under. ``threshold``: a pair is
    kept when its score is at least this. ``top_fraction``: also only the best this share of the scored pairs (null:
    no cap). ``min_words``: shorter responses are dropped. ``max_words``: longer responses are dropped.
    ``max_new_tokens``: tokens per written instruction at most. ``train_backward``: first fine-tune the backward
    model on the round's (sample, prompt) pairs (Humpback's M_yx). ``backward_epochs``: its training epochs.
    ``backward_learning_rate``: its learning rate."""

    name = "backtranslation"

    def __init__(
        self,
        source: str = "lab",
        path: str | None = None,
        count: int = 200,
        backward_model: str = "policy",
        judge: str = "lab:teacher",
        format: Literal["yes_no", "rubric5"] = "yes_no",
        mode: Literal["logprob", "generate"] = "logprob",
        principle: str = "helpful",
        constitution: str | None = None,
        threshold: float = 0.5,
        top_fraction: float | None = None,
        min_words: int = 3,
        max_words: int = 80,
        max_new_tokens: int = 32,
        train_backward: bool = False,
        backward_epochs: float = 2.0,
        backward_learning_rate: float = 3e-4,
        seed: int = 0,
        load_lm: Callable | None = None,
    ):
        if source not in methods.PTX_SOURCES:
            raise ValueError(f"source must be one of {', '.join(map(repr, methods.PTX_SOURCES))}, not {source!r}")
        if source == "file" and (not path or not Path(path).is_file()):
            raise ValueError(f"path: file not found: {path} (source file needs a JSONL of {{\"text\": ...}} rows)")
        check_choice("format", format, ("yes_no", "rubric5"))
        check_choice("mode", mode, ("logprob", "generate"))
        if count < 1 or max_new_tokens < 1 or min_words < 1 or max_words < min_words:
            raise ValueError("count, max_new_tokens and min_words must be >= 1, and max_words >= min_words")
        if backward_epochs <= 0 or backward_learning_rate <= 0:
            raise ValueError("backward_epochs and backward_learning_rate must be > 0")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be in [0, 1]")
        if top_fraction is not None and not 0.0 < top_fraction <= 1.0:
            raise ValueError("top_fraction must be in (0, 1]")
        self.constitution = constitution_from(constitution)
        ids = [p.id for p in self.constitution.principles]
        check_choice("principle", principle, ids)
        self.principle = next(p for p in self.constitution.principles if p.id == principle)
        self.source, self.path, self.count = source, path, count
        self.backward = ModelRef(backward_model, load_lm, "backward_model")
        self.judge = ModelRef(judge, load_lm, "judge")
        self.judge_options = dict(format=format, mode=mode, seed=seed)
        self.threshold, self.top_fraction = threshold, top_fraction
        self.min_words, self.max_words, self.max_new_tokens, self.seed = min_words, max_words, max_new_tokens, seed
        self.train_backward, self.load_lm = train_backward, load_lm
        self.backward_train = dict(epochs=backward_epochs, learning_rate=backward_learning_rate)

    def texts(self, seed: int) -> list[str]:
        return list(methods.resolve(methods.PTX_SOURCES[self.source])(self.count, seed, self.path))

    def __call__(self, prompts: Sequence, samples: Sequence, policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        seed = ctx.seed if ctx is not None else self.seed
        texts = self.texts(seed)
        dropped = {"too_short": 0, "too_long": 0, "repeat": 0}
        responses: list[str] = []
        seen: set[str] = set()
        for t in texts:
            r = as_response(t)
            n = len(r.split())
            reason = "too_short" if n < self.min_words else "too_long" if n > self.max_words else \
                "repeat" if r in seen else None
            if reason:
                dropped[reason] += 1
                continue
            seen.add(r)
            responses.append(r)
        backward = self.backward.get(policy)
        artifacts: dict[str, Artifact] = {}
        trained: dict = {}
        if self.train_backward:
            backward, trained, artifacts = self._fit_backward(backward, prompts, samples, seed, ctx)
        asks = [[{"role": "user", "content": BACKWARD_PROMPT.format(response=r)}] for r in responses]
        sampling = Sampling(n=1, temperature=0.0, top_p=1.0, max_new_tokens=self.max_new_tokens, seed=seed)
        outs = backward.generate(asks, sampling) if asks else []
        instructions = [parse_instruction(c[0].text if c else "") for c in outs]
        judged = [i for i, ins in enumerate(instructions) if ins]
        judge = PointwiseJudge(self.judge.get(policy), self.constitution, **self.judge_options)  # type: ignore[arg-type]
        verdicts = judge.score([JudgeItem(instructions[i], responses[i], self.principle.text) for i in judged])
        scores: list[float | None] = [None] * len(responses)
        for i, v in zip(judged, verdicts):
            scores[i] = v.value
        keep = curate(scores, self.threshold, self.top_fraction)
        result = SignalResult(artifacts=artifacts)
        rows: list[dict] = []
        for r, ins, s, k in zip(responses, instructions, scores, keep):
            pid = f"bt-{stable_id(str(seed), ins, r)}"
            decision = "kept" if k else ("no_instruction" if not ins else "unscored" if s is None else "low_score")
            rows.append({"id": pid, "instruction": ins, "response": r, "score": s, "decision": decision})
            if k:
                result.sft.append(SFTExample(prompt_id=pid, signal=self.name, messages=[
                    {"role": "user", "content": ins}, {"role": "assistant", "content": r}]))
        if ctx is not None:
            from autoalign.store import write_jsonl

            ctx.dir.mkdir(parents=True, exist_ok=True)
            write_jsonl(ctx.dir / "curation.jsonl", rows)
        valid = [s for s in scores if s is not None]
        decisions = {d: sum(row["decision"] == d for row in rows) for d in ("kept", "low_score", "unscored",
                                                                           "no_instruction")}
        result.stats = {
            "source": self.source, "texts": len(texts), "responses": len(responses),
            "dropped": dropped, "instructions": len(judged), "judge": getattr(judge.lm, "uri", self.judge.spec),
            "backward_model": getattr(backward, "uri", self.backward.spec), "mean_score":
                round(sum(valid) / len(valid), 4) if valid else None, "threshold": self.threshold,
            "curation": decisions, "sft": len(result.sft), **trained,
            "examples": [{k: row[k] for k in ("instruction", "response", "score")}
                         for row in rows if row["decision"] == "kept"][:3],
        }
        return result

    def _fit_backward(self, base: LM, prompts: Sequence, samples: Sequence, seed: int,
                      ctx: StageContext | None) -> tuple[LM, dict, dict[str, Artifact]]:
        """The backward model M_yx: ``base`` fine-tuned on (output -> instruction) seed pairs (``seed_pairs``)."""
        base_path = getattr(base, "path", None)
        if base_path is None:
            raise UserError(f"backtranslation backward_model {self.backward.spec!r}: no local weights to fine-tune "
                            "(train_backward needs a lab: or hf: model)")
        rows = seed_pairs(prompts, samples)
        if len(rows) < 2:
            raise UserError(f"backtranslation: only {len(rows)} seed pairs to train the backward model on")
        out = ctx.artifact_dir(BACKWARD) if ctx is not None else Path(tempfile.mkdtemp(prefix="backward-"))
        from autoalign.train.sft import train_sft

        metrics = train_sft(base_path, rows, out, seed=seed, **self.backward_train)  # type: ignore[arg-type]
        if self.load_lm is not None:  # the run's loader (its call cache, its device)
            lm = self.load_lm(f"hf:{(out / 'model').resolve()}")
        else:
            from autoalign.models.hf import HFModel

            lm = HFModel(out / "model")
        stats = {"backward_seed_pairs": len(rows), "backward_steps": metrics.get("steps"),
                 "backward_loss": metrics.get("train_loss")}
        return lm, stats, {BACKWARD: Artifact(kind="backward_model", path=f"{BACKWARD}/model")}


def seed_pairs(prompts: Sequence, samples: Sequence) -> list[dict]:
    """Seed (output, instruction) pairs for the backward model, as TRL ``messages`` rows: each prompt's first
    non-empty sample asked back to the prompt's text (``BACKWARD_PROMPT``)."""
    first: dict[str, str] = {}
    for s in sorted(samples, key=lambda s: (s.prompt_id, s.index)):
        if s.text.strip() and s.prompt_id not in first:
            first[s.prompt_id] = as_response(s.text)
    return [{"messages": [{"role": "user", "content": BACKWARD_PROMPT.format(response=first[p.id])},
                          {"role": "assistant", "content": p.text}]} for p in prompts if first.get(p.id)]
