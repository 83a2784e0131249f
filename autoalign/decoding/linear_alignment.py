"""Linear Alignment (Gao et al. 2024, "Linear Alignment: A Closed-form Solution for Aligning Human Preferences
without Tuning and Feedback", arXiv 2401.11458, ICML 2024): no training, no feedback; at each decoding step the
next-token distribution is moved, in closed form, along the direction from the unconditioned policy to the
principle-conditioned one (self-contrastive decoding, sec. 3):

    Q*(. | x, y<t) = Q(. | p, x, y<t) + alpha * (Q(. | p, x, y<t) - Q(. | x, y<t))

where ``Q`` are the model's next-token log-probabilities (its logits up to a per-row constant, which softmax
ignores), ``p`` the principle (a system prompt). ``alpha = 0`` is the principle-conditioned policy itself; the
authors' code (``model.py``, ``ratio``) writes the same line as ``(1 + ratio) * Q_p - ratio * Q``. The candidates
are, as in their code, the nucleus (top-p) of the principle-conditioned distribution (``support_top_p``; 1.0: all
tokens), so the extrapolation cannot promote a token the conditioned policy finds implausible.

Implemented as a transformers ``LogitsProcessor`` on a generation whose input is the principle-conditioned prompt;
the processor runs the same model on the unconditioned prompt (with its own KV cache) to read ``Q(. | x, y<t)``."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, Sequence, cast

from pydantic import BaseModel, ConfigDict, Field

from autoalign.decoding.system_prompt import with_system
from autoalign.errors import UserError
from autoalign.models.base import Completion, Prompt, Sampling, row_seed

if TYPE_CHECKING:  # torch and transformers load when a generation runs, not when a recipe is validated
    import torch


def linear_alignment_shift(conditioned: torch.Tensor, unconditioned: torch.Tensor, alpha: float) -> torch.Tensor:
    """[rows, vocab] next-token logits under the principle and without it -> the shifted log-probabilities.
    Gao et al. 2024, sec. 3: Q* = Q_p + alpha * (Q_p - Q), with Q = log_softmax(logits)."""
    q_p = conditioned.float().log_softmax(-1)
    q = unconditioned.float().log_softmax(-1)
    return (q_p + alpha * (q_p - q)).log_softmax(-1)  # renormalised; the same distribution as softmax(Q*)


def nucleus_mask(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """[rows, vocab] bool: True for tokens outside the top-p nucleus of softmax(logits) (the most probable token is
    always kept): the authors' ``top_p_logits``, a token is cut once the mass before it reaches ``top_p``."""
    import torch

    probs = logits.float().softmax(-1)
    sorted_p, idx = probs.sort(-1, descending=True)
    cut = (sorted_p.cumsum(-1) - sorted_p) >= top_p
    cut[:, 0] = False
    return torch.zeros_like(cut).scatter(-1, idx, cut)


@cache
def processor_class() -> type:
    """``LinearAlignmentProcessor``, a ``transformers.LogitsProcessor`` (defined at first use: importing this module
    for its config must not load transformers)."""
    import torch
    from transformers import LogitsProcessor

    class LinearAlignmentProcessor(LogitsProcessor):
        """Replaces the principle-conditioned ``scores`` (raw logits: put it first in the list) by the shifted
        log-probabilities. ``model``: the same causal LM; ``uncond_ids``/``uncond_mask``: the unconditioned prompts,
        left-padded, one row per generated row; ``cond_width``: the conditioned inputs' padded width (the generated
        tokens are ``input_ids[:, cond_width:]``). ``temperature`` only shapes the support's nucleus (the sampling
        temperature is applied after, by the usual warper). ``logps`` keeps each step's shifted log-probabilities."""

        def __init__(self, model: Any, uncond_ids: torch.Tensor, uncond_mask: torch.Tensor, cond_width: int,
                     alpha: float, support_top_p: float = 1.0, temperature: float = 1.0):
            self.model, self.alpha, self.support_top_p = model, alpha, support_top_p
            self.temperature = temperature if temperature > 0 else 1.0
            self.ids, self.mask, self.cond_width = uncond_ids, uncond_mask, cond_width
            self.past: Any = None
            self.seen = 0
            self.logps: list[torch.Tensor] = []

        def _unconditioned_logits(self, input_ids: torch.Tensor) -> torch.Tensor:
            new = input_ids[:, self.cond_width:]
            if self.past is None:
                ids = torch.cat([self.ids, new], dim=1)
                self.mask = torch.cat([self.mask, torch.ones_like(new)], dim=1)
            else:
                ids = new[:, self.seen:]
                self.mask = torch.cat([self.mask, torch.ones_like(ids)], dim=1)
            positions = (self.mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1]:]
            out = self.model(input_ids=ids, attention_mask=self.mask, position_ids=positions,
                             past_key_values=self.past, use_cache=True)
            self.past, self.seen = out.past_key_values, new.shape[1]
            return out.logits[:, -1]

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            shifted = linear_alignment_shift(scores, self._unconditioned_logits(input_ids), self.alpha)
            if self.support_top_p < 1.0:
                shifted = shifted.masked_fill(nucleus_mask(scores / self.temperature, self.support_top_p), float("-inf"))
                shifted = shifted.log_softmax(-1)
            self.logps.append(shifted)
            return cast(torch.FloatTensor, shifted.to(scores.dtype))

    return LinearAlignmentProcessor


class LinearAlignedLM:
    """A transformers policy (``HFModel``) decoded with Linear Alignment toward ``principle`` (a system prompt).
    Same protocol; sampling is seeded per (prompt, sample index) as ``HFModel`` does (Gumbel-max after the
    temperature and top-p warpers), keyed by the principle-conditioned prompt it decodes. ``Completion.logprob`` is under the shifted distribution; ``logprobs`` (scoring
    a given continuation) is the principle-conditioned policy's."""

    def __init__(self, policy: Any, principle: str, alpha: float = 1.0, support_top_p: float = 1.0):
        if not hasattr(policy, "model") or not hasattr(policy, "_encode_prompt"):
            raise UserError(f"linear alignment needs a transformers model (hf: or lab:), not {policy.uri}")
        self.policy, self.principle, self.alpha, self.support_top_p = policy, principle, alpha, support_top_p
        self.uri = f"linear-alignment:{policy.uri}"

    def fingerprint(self) -> str:
        key = json.dumps([self.policy.fingerprint(), self.principle, self.alpha, self.support_top_p])
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def logprobs(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        return self.policy.logprobs([with_system(p, self.principle) for p in prompts], continuations)

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        import torch

        with torch.inference_mode():
            return self._generate(prompts, sampling)

    def _generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        hf = self.policy
        room = sampling.max_new_tokens
        rows = [(i, j) for i in range(len(prompts)) for j in range(sampling.n)]
        cond = [hf._fit(hf._encode_prompt(with_system(p, self.principle)), room) for p in prompts]
        plain = [hf._fit(hf._encode_prompt(p), room) for p in prompts]
        order = sorted(range(len(rows)), key=lambda r: (len(cond[rows[r][0]]), r))
        out: list[list[Completion | None]] = [[None] * sampling.n for _ in prompts]
        for start in range(0, len(order), hf.batch_size):
            chunk = [rows[r] for r in order[start : start + hf.batch_size]]
            done = self._rows([cond[i] for i, _ in chunk], [plain[i] for i, _ in chunk],
                              [row_seed(sampling.seed, with_system(prompts[i], self.principle), j) for i, j in chunk], sampling)
            for (i, j), c in zip(chunk, done):
                out[i][j] = c
        return out  # type: ignore[return-value]

    def _rows(self, cond: list[list[int]], plain: list[list[int]], seeds: list[int],
              sampling: Sampling) -> list[Completion]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

        from autoalign.models.hf import _SeededGumbel

        hf, tok = self.policy, self.policy.tokenizer
        pad, dev = tok.pad_token_id, hf.device

        def left(ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
            w = max(len(x) for x in ids)
            return (torch.tensor([[pad] * (w - len(x)) + x for x in ids], device=dev),
                    torch.tensor([[0] * (w - len(x)) + [1] * len(x) for x in ids], device=dev))

        input_ids, attention = left(cond)
        u_ids, u_mask = left(plain)
        la = processor_class()(hf.model, u_ids, u_mask, input_ids.shape[1], self.alpha, self.support_top_p,
                                      sampling.temperature)
        processors = LogitsProcessorList([la])
        if sampling.temperature > 0:
            if sampling.temperature != 1.0:
                processors.append(TemperatureLogitsWarper(sampling.temperature))
            if sampling.top_p < 1.0:
                processors.append(TopPLogitsWarper(sampling.top_p))
            processors.append(_SeededGumbel(seeds))
        config = GenerationConfig(do_sample=False, max_new_tokens=sampling.max_new_tokens, pad_token_id=pad,
                                  eos_token_id=tok.eos_token_id, return_dict_in_generate=True)
        result = hf.model.generate(input_ids=input_ids, attention_mask=attention, generation_config=config,
                                   logits_processor=processors)
        new = result.sequences[:, input_ids.shape[1]:]
        logps = torch.stack(la.logps[: new.shape[1]], dim=1)  # [rows, steps, vocab], the shifted distribution
        token_logps = logps.gather(-1, new.unsqueeze(-1)).squeeze(-1)
        completions = []
        for r in range(len(cond)):
            tokens = new[r].tolist()
            finish = "length"
            if tok.eos_token_id in tokens:
                tokens, finish = tokens[: tokens.index(tok.eos_token_id)], "stop"
            text = cast(str, tok.decode(tokens, skip_special_tokens=True))
            for stop in sampling.stop:
                if stop in text:
                    text, finish = text[: text.index(stop)], "stop"
            completions.append(Completion(text=text, finish_reason=finish, num_tokens=len(tokens),
                                          logprob=float(token_logps[r, : len(tokens)].sum())))
        return completions


class LinearAlignmentConfig(BaseModel):
    """``principle``: the system prompt the policy is moved toward (for the lab: its ``SYSTEM_PROMPT``, written
    out in the recipe); ``alpha``: the step along Q_p - Q (0: the principle-conditioned policy); ``support_top_p``:
    the candidates (the conditioned distribution's nucleus; 1.0: every token)."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["linear_alignment"] = "linear_alignment"
    principle: str = Field(min_length=1)
    alpha: float = Field(1.0, ge=0.0)
    support_top_p: float = Field(1.0, gt=0.0, le=1.0)
    tag: str = "linear-alignment"  # the variant suite's suffix (``lab@linear-alignment``)
    suites: list[str] = Field(default_factory=lambda: ["lab"])  # the suites the variant is evaluated on


class LinearAlignment:
    role = "variant"

    def __init__(self, cfg: LinearAlignmentConfig, where: str, sampling_temperature: float = 0.8):
        self.cfg, self.where, self.tag, self.suites = cfg, where, cfg.tag, cfg.suites

    def evaluated_uri(self, k: int, policy_uri: str) -> str:
        return policy_uri

    def wrap(self, k: int, policy_lm: Any, env: Any) -> Any | None:
        return LinearAlignedLM(policy_lm, self.cfg.principle, self.cfg.alpha, self.cfg.support_top_p)
