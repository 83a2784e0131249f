"""Reward models: the Bradley-Terry objective, scoring with a trained sequence-classification model, and
best-of-n selection (at inference, as an ``LM`` wrapper; in training data, as RAFT's filter).

Training lives in ``autoalign.train.reward`` (TRL's RewardTrainer); this module only reads the saved directory.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, cast

import torch

from autoalign.models.base import LM, Completion, Prompt, Sampling
from autoalign.records import Prompt as PromptRecord
from autoalign.scoring import Score
from autoalign.scoring import top_k as scoring_top_k

if TYPE_CHECKING:  # the type only: transformers is imported lazily
    from transformers import BatchEncoding


# ---- pure functions -------------------------------------------------------------------------------------------
def bradley_terry_loss(
    r_chosen: torch.Tensor, r_rejected: torch.Tensor, margin: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean over pairs of -log sigma(r(x, y_w) - r(x, y_l) - m). Shapes: [pairs] each; returns a scalar.
    Ouyang et al. 2022, eq. 1 (m = 0); the margin m is Llama 2's (Touvron et al. 2023, eq. 2). TRL's
    RewardTrainer.compute_loss computes the same quantity."""
    diff = r_chosen - r_rejected - (margin if margin is not None else 0.0)
    return -torch.nn.functional.logsigmoid(diff).mean()  # Ouyang et al. 2022, eq. 1


def pairwise_accuracy(r_chosen: Sequence[float], r_rejected: Sequence[float]) -> float:
    """Share of pairs where the chosen response gets the strictly higher reward (ties count as errors)."""
    if not r_chosen:
        return float("nan")
    return sum(c > r for c, r in zip(r_chosen, r_rejected)) / len(r_chosen)


def best_of_n(scores: Sequence[float]) -> int:
    """Index of the highest score, the first one among equals (best-of-n sampling, Nakano et al. 2021, sec. 3.3)."""
    if not scores:
        raise ValueError("best_of_n: no scores")
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def top_k(scores: Sequence[float], k: int) -> list[int]:
    """Indices of the ``k`` highest scores, best first, earlier index first among equals (RAFT's filter):
    ``autoalign.scoring.top_k``, the selection rule, without its text and threshold options."""
    return scoring_top_k(scores, k)


# ---- a trained reward model -----------------------------------------------------------------------------------
class RewardModel:
    """Scores (prompt, response) with a sequence-classification directory of one label (``train_reward_model``).
    The text is built as TRL's RewardTrainer builds it: the chat template over prompt + assistant response
    (conversational prompts), or prompt + response + EOS (raw-text prompts)."""

    def __init__(self, path: str | Path, device: str | None = None, batch_size: int = 32):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.path = str(path)
        self.uri = f"rm:{self.path}"
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.model = AutoModelForSequenceClassification.from_pretrained(self.path, dtype=dtype, use_safetensors=True)
        if self.model.config.num_labels != 1:
            raise ValueError(f"reward model {self.path}: expected num_labels=1, got {self.model.config.num_labels}")
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model.to(self.device).eval()
        self.max_positions = getattr(self.model.config, "max_position_embeddings", None) or 4096

    def fingerprint(self) -> str:
        h = hashlib.sha256(self.path.encode())
        for f in sorted(Path(self.path).glob("*.json")):
            h.update(f.read_bytes())
        return h.hexdigest()[:16]

    def _ids(self, prompt: Prompt, response: str) -> list[int]:
        if isinstance(prompt, str):
            ids = self.tokenizer(prompt + response + (self.tokenizer.eos_token or ""))["input_ids"]
        else:
            conv = [*prompt, {"role": "assistant", "content": response}]
            encoded = cast("BatchEncoding", self.tokenizer.apply_chat_template(conv, tokenize=True, return_dict=True))
            ids = encoded["input_ids"]  # return_dict=True: a BatchEncoding
        return ids[-self.max_positions :]  # keep the end: the reward is read at the last token

    @property
    def name(self) -> str:
        return self.uri

    scale = "reward"

    def __call__(self, prompts: Sequence, responses: Sequence[str]) -> list[Score]:
        """The ``Scorer`` shape: value = r(x, y), a real number that only ranks responses to one prompt."""
        messages = [p.messages if isinstance(p, PromptRecord) else p for p in prompts]
        return [Score(r) for r in self.score(messages, responses)]

    @torch.inference_mode()
    def score(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        """r(x, y) for each aligned pair."""
        if len(prompts) != len(responses):
            raise ValueError("score: prompts and responses must have the same length")
        seqs = [self._ids(p, r) for p, r in zip(prompts, responses)]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        out = [0.0] * len(seqs)
        pad = self.tokenizer.pad_token_id
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = max(len(seqs[i]) for i in rows)
            ids = torch.tensor([seqs[i] + [pad] * (width - len(seqs[i])) for i in rows], device=self.device)
            mask = torch.tensor([[1] * len(seqs[i]) + [0] * (width - len(seqs[i])) for i in rows], device=self.device)
            logits = self.model(input_ids=ids, attention_mask=mask).logits.float()[:, 0]
            for i, v in zip(rows, logits.tolist()):
                out[i] = v
        return out


class BestOfNLM:
    """An ``LM`` that answers with the highest-reward of ``n`` policy samples (best-of-n at inference).

    Each requested sample is the best of its own ``n`` candidates, drawn at ``temperature`` (a greedy request
    still needs diverse candidates). ``logprobs`` is the policy's own (the wrapper changes which response is
    picked, not the policy's likelihood); a returned ``Completion.logprob`` is the chosen candidate's."""

    def __init__(self, policy: LM, reward_model: RewardModel, n: int = 4, temperature: float = 0.8):
        if n < 1:
            raise ValueError("best-of-n needs n >= 1")
        self.policy, self.rm, self.n, self.temperature = policy, reward_model, n, temperature
        self.uri = f"best-of-{n}:{policy.uri}+{reward_model.uri}"

    def fingerprint(self) -> str:
        key = json.dumps([self.policy.fingerprint(), self.rm.fingerprint(), self.n, self.temperature])
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        temperature = sampling.temperature if sampling.temperature > 0 else self.temperature
        inner = replace(sampling, n=sampling.n * self.n, temperature=temperature)
        cands = self.policy.generate(list(prompts), inner)
        flat_p = [p for p, cs in zip(prompts, cands) for _ in cs]
        rewards = self.rm.score(flat_p, [c.text for cs in cands for c in cs])
        out, pos = [], 0
        for cs in cands:
            r = rewards[pos : pos + len(cs)]
            pos += len(cs)
            picks = []
            for j in range(sampling.n):
                block = range(j * self.n, (j + 1) * self.n)
                picks.append(cs[block[best_of_n([r[i] for i in block])]])
            out.append(picks)
        return out

    def logprobs(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        return self.policy.logprobs(prompts, continuations)
