"""Hugging Face transformers provider: batched, seeded sampling and one-pass continuation log-probs.

Sampling is reproducible per (seed, prompt, sample index) whatever the batch layout: each row gets its own
``torch.Generator`` and the sample is drawn by the Gumbel-max trick (argmax of logits + Gumbel noise is an exact
draw from the softmax), applied as a logits processor on top of transformers' own temperature and top-p warpers
and greedy search. A resumed run or a cache hit therefore yields exactly the text a fresh run would.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Sequence, cast

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DynamicCache,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopPLogitsWarper,
)

from autoalign.errors import UserError
from autoalign.models.base import Completion, Prompt, Sampling, row_seed, scored_choice_logprobs

logger = logging.getLogger(__name__)


class _SeededGumbel(LogitsProcessor):
    """Adds Gumbel(0, 1) noise drawn from one generator per row; greedy search then samples exactly."""

    def __init__(self, seeds: list[int]):
        self.generators = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        vocab = scores.shape[-1]
        u = torch.stack([torch.rand(vocab, generator=g, dtype=torch.float64) for g in self.generators])
        gumbel = -torch.log(-torch.log(u.clamp(1e-300, 1.0 - 1e-16)))
        return cast(torch.FloatTensor, scores + gumbel.to(device=scores.device, dtype=scores.dtype))


class _DrawnLogprobs(LogitsProcessor):
    """Records each drawn token's untempered log-probability as generation goes, so nothing of vocabulary size
    outlives a step. First in the processor list, it sees the model's raw next-token scores (what
    ``output_logits`` would keep for every step: [rows, steps, vocab] floats, 16 GiB for 256 rows x 128 tokens of
    a 128k vocabulary); it keeps one step's scores and their log-normaliser and, at the next step (or in
    ``finish``), gathers the token that was appended. It returns the scores unchanged, so the text drawn is the
    same as without it."""

    def __init__(self) -> None:
        self.steps: list[torch.Tensor] = []  # [rows] log-probabilities of the tokens drawn so far
        self._scores: torch.Tensor | None = None
        self._lse: torch.Tensor | None = None

    def _gather(self, tokens: torch.Tensor) -> None:
        if self._scores is not None and self._lse is not None:
            picked = self._scores.gather(-1, tokens.view(-1, 1)).squeeze(-1).float()
            self.steps.append(picked - self._lse)  # log softmax(z)_y = z_y - logsumexp(z)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self._gather(input_ids[:, -1])
        self._scores, self._lse = scores, torch.logsumexp(scores.float(), dim=-1)
        return scores

    def finish(self, new_tokens: torch.Tensor) -> torch.Tensor:
        """[rows, steps] log-probabilities of ``new_tokens`` (the generated part of the sequences)."""
        if new_tokens.shape[1] > len(self.steps):
            self._gather(new_tokens[:, len(self.steps)])
        self._scores = self._lse = None
        if not self.steps:
            return torch.zeros(new_tokens.shape[0], 0)
        return torch.stack(self.steps, dim=1)


def _shared_prefix(rows: list[list[int]]) -> int:
    """How many leading tokens every row has in common, leaving each row at least its last token to run (the
    position whose next-token distribution is read)."""
    shortest = min(len(r) for r in rows)
    n = 0
    while n < shortest - 1 and all(r[n] == rows[0][n] for r in rows):
        n += 1
    return n


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class HFModel:
    """A causal LM from a Hugging Face directory or hub id (local files only unless the user allows downloads)."""

    def __init__(
        self,
        path: str | os.PathLike,
        uri: str | None = None,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        batch_size: int = 64,
        trust_remote_code: bool = False,
        model=None,
        tokenizer=None,
    ):
        self.path = str(path)
        self.uri = uri or f"hf:{self.path}"
        self.device = device or default_device()
        self.batch_size = batch_size
        if dtype is None:
            dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        try:
            self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(self.path, trust_remote_code=trust_remote_code)
            self.model = model or AutoModelForCausalLM.from_pretrained(
                self.path, dtype=dtype, use_safetensors=True, trust_remote_code=trust_remote_code
            )
        except (OSError, ValueError) as exc:
            raise UserError(f"model {self.uri}: cannot load from {self.path}: {str(exc).splitlines()[0]}") from exc
        # transformers decorates PreTrainedModel.to with functools.wraps(nn.Module.to), which mypy binds wrongly
        self.model.to(self.device).eval()  # type: ignore[arg-type]
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._fingerprint: str | None = None
        # The context the model was trained for; prompts longer than it are cut from the left (see ``_fit``).
        self.max_positions: int | None = getattr(self.model.config, "max_position_embeddings", None) or None
        self.truncated = 0  # prompts cut so far, for the caller's stats
        # A judge batch whose prompts share at least this many leading tokens computes them once (see
        # ``_last_logits_shared``); below it the saving does not pay for the extra forward call.
        self.min_shared_prefix = 16

    # ---- identity -------------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """sha256 over the directory's config, tokenizer and weight files (weights by size + head/tail bytes)."""
        if self._fingerprint is None:
            h = hashlib.sha256(self.uri.encode())
            root = Path(self.path)
            if root.is_dir():
                for f in sorted(root.iterdir()):
                    if not f.is_file():
                        continue
                    h.update(f.name.encode())
                    size = f.stat().st_size
                    h.update(str(size).encode())
                    with open(f, "rb") as fh:
                        if size <= 64 << 20:
                            h.update(fh.read())
                        else:
                            h.update(fh.read(1 << 20))
                            fh.seek(size - (1 << 20))
                            h.update(fh.read())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    # ---- text -----------------------------------------------------------------------------------------------
    def render(self, prompt: Prompt) -> str:
        """Chat messages through the tokenizer's chat template (with generation prompt); raw text unchanged."""
        if isinstance(prompt, str):
            return prompt
        # tokenize=False: the rendered text
        return cast(str, self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True))

    def _encode_prompt(self, prompt: Prompt) -> list[int]:
        # A chat template writes its own special tokens; raw text gets the tokenizer's usual ones (e.g. BOS).
        return self.tokenizer(self.render(prompt), add_special_tokens=isinstance(prompt, str))["input_ids"]

    def _fit(self, ids: list[int], room: int) -> list[int]:
        """The prompt's last tokens, so that it and ``room`` more tokens fit the model's context. Why the left cut:
        a chat prompt ends with the turn to answer and the generation prompt, which must survive; past its trained
        context a model's positions are out of distribution (its answers are noise, as on a long HumanEval prompt
        given to a 384-position lab model), while a prompt missing its start is still a prompt."""
        if self.max_positions is None or len(ids) + room <= self.max_positions:
            return ids
        keep = max(1, self.max_positions - room)
        if self.truncated == 0:
            logger.warning("model %s: a prompt of %d tokens was cut to its last %d to fit the context of %d "
                           "(further cuts are counted, not logged)", self.uri, len(ids), keep, self.max_positions)
        self.truncated += 1
        return ids[-keep:]

    # ---- generation -----------------------------------------------------------------------------------------
    @torch.inference_mode()
    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        rows = [(i, j) for i in range(len(prompts)) for j in range(sampling.n)]
        # Room for the answer, but never more than a quarter of the context: a long max_new_tokens (GSM8K asks 256 of
        # a 384-position lab model) must not cut a prompt that fits; an answer that runs past the context ends there
        # as noise, which is what the model would do anyway.
        room = sampling.max_new_tokens if self.max_positions is None else min(sampling.max_new_tokens,
                                                                              self.max_positions // 4)
        encoded = [self._fit(self._encode_prompt(p), room) for p in prompts]
        # Batch rows of similar prompt length together to waste less compute on padding.
        order = sorted(range(len(rows)), key=lambda r: (len(encoded[rows[r][0]]), r))
        out: list[list[Completion | None]] = [[None] * sampling.n for _ in prompts]
        for start in range(0, len(order), self.batch_size):
            chunk = [rows[r] for r in order[start : start + self.batch_size]]
            completions = self._generate_rows(
                [encoded[i] for i, _ in chunk],
                [row_seed(sampling.seed, prompts[i], j) for i, j in chunk],
                sampling,
            )
            for (i, j), c in zip(chunk, completions):
                out[i][j] = c
        return out  # type: ignore[return-value]

    def _generate_rows(self, ids: list[list[int]], seeds: list[int], sampling: Sampling) -> list[Completion]:
        tok = self.tokenizer
        width = max(len(x) for x in ids)
        pad = tok.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=self.device)
        attention = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=self.device)
        drawn = _DrawnLogprobs()
        processors = LogitsProcessorList([drawn])
        if sampling.temperature > 0:
            if sampling.temperature != 1.0:
                processors.append(TemperatureLogitsWarper(sampling.temperature))
            if sampling.top_p < 1.0:
                processors.append(TopPLogitsWarper(sampling.top_p))
            processors.append(_SeededGumbel(seeds))
        config = GenerationConfig(
            do_sample=False,
            max_new_tokens=sampling.max_new_tokens,
            pad_token_id=pad,
            eos_token_id=tok.eos_token_id,
            return_dict_in_generate=True,
        )
        result = self.model.generate(
            input_ids=input_ids, attention_mask=attention, generation_config=config, logits_processor=processors
        )
        new = result.sequences[:, width:]
        token_logps = drawn.finish(new).cpu()  # [rows, steps], untempered, recorded as drawn
        completions = []
        for r in range(len(ids)):
            tokens = new[r].tolist()
            finish = "length"
            if tok.eos_token_id in tokens:
                tokens = tokens[: tokens.index(tok.eos_token_id)]
                finish = "stop"
            text = cast(str, tok.decode(tokens, skip_special_tokens=True))  # one sequence decodes to one str
            for stop in sampling.stop:
                if stop in text:
                    text, finish = text[: text.index(stop)], "stop"
            completions.append(
                Completion(
                    text=text,
                    finish_reason=finish,
                    logprob=float(token_logps[r, : len(tokens)].sum()),
                    num_tokens=len(tokens),
                )
            )
        return completions

    # ---- scoring --------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def logprobs(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        if len(prompts) != len(continuations):
            raise ValueError("logprobs: prompts and continuations must have the same length")
        pairs = []
        for p, c in zip(prompts, continuations):
            tail = self.tokenizer(c, add_special_tokens=False)["input_ids"]
            pairs.append((self._fit(self._encode_prompt(p), len(tail)), tail))
        scores: list[float] = []
        for start in range(0, len(pairs), self.batch_size):
            scores.extend(self._score(pairs[start : start + self.batch_size]))
        return scores

    def choice_logprobs(self, prompts: Sequence[Prompt], choices: Sequence[str]) -> list[list[float]]:
        """log P(choice | prompt) for every prompt and choice, from ONE forward row per prompt when every choice is
        a single token: the next-token distribution after the prompt holds them all (a judge's Yes/No or 1-5 read
        in one pass instead of one scored row per choice). Multi-token choices fall back to ``logprobs``."""
        ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]
        if any(len(x) != 1 for x in ids):
            return scored_choice_logprobs(self, prompts, choices)
        wanted = torch.tensor([x[0] for x in ids], device=self.device)
        heads = [self._fit(self._encode_prompt(p), 1) for p in prompts]
        # Prompts that open alike (a judge's principle or rubric) share a batch, so that the batch computes their
        # common prefix once; within such a group, similar lengths share a batch: less padding.
        order = sorted(range(len(heads)), key=lambda i: (heads[i][: self.min_shared_prefix], len(heads[i])))
        out: list[list[float]] = [[] for _ in heads]
        pad = self.tokenizer.pad_token_id
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                width = max(len(heads[i]) for i in rows)
                x = torch.tensor([heads[i] + [pad] * (width - len(heads[i])) for i in rows], device=self.device)
                mask = torch.tensor([[1] * len(heads[i]) + [0] * (width - len(heads[i])) for i in rows],
                                    device=self.device)
                last = torch.tensor([len(heads[i]) - 1 for i in rows], device=self.device)
                shared = _shared_prefix([heads[i] for i in rows])
                if shared >= self.min_shared_prefix and len(rows) > 1:
                    logits = self._last_logits_shared(heads[rows[0]][:shared], x[:, shared:], mask, last - shared)
                else:
                    logits = self._last_logits(x, mask, last)
                logps = logits.float().log_softmax(-1)[:, wanted]
                for i, row in zip(rows, logps.tolist()):
                    out[i] = row
        return out

    def _last_logits(self, input_ids: torch.Tensor, mask: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """[rows, vocab] next-token logits at each row's position ``last`` (right-padded rows). The output layer
        runs on those positions only: the full [rows, positions, vocab] logits of a 128k vocabulary would be
        gigabytes for one judge batch. Models without a separate decoder and output layer get the full pass."""
        decoder = self.model.get_decoder() if hasattr(self.model, "get_decoder") else None
        head = self.model.get_output_embeddings()
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        if decoder is None or head is None or decoder is self.model:
            return self.model(input_ids=input_ids, attention_mask=mask).logits[rows, last]
        hidden = decoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
        return head(hidden[rows, last])

    def _last_logits_shared(self, prefix: list[int], rest: torch.Tensor, mask: torch.Tensor,
                            last: torch.Tensor) -> torch.Tensor:
        """``_last_logits`` for rows that all begin with the tokens ``prefix`` (a judge's rubric or principle before
        the response): the prefix runs once, as one row, and its KV cache is repeated for every row, which then
        runs only its own tokens ``rest`` (right-padded; ``mask`` covers prefix and rest, ``last`` indexes rest).
        The figures are those of the full pass up to float rounding (tested to 1e-4)."""
        rows = rest.shape[0]
        head_ids = torch.tensor([prefix], device=rest.device)
        cache = DynamicCache()
        self.model(input_ids=head_ids, cache=cache, use_cache=True, logits_to_keep=1)
        cache.batch_repeat_interleave(rows)  # a copy of the prefix's keys and values per row
        positions = torch.arange(len(prefix), len(prefix) + rest.shape[1], device=rest.device).expand(rows, -1)
        decoder = self.model.get_decoder() if hasattr(self.model, "get_decoder") else None
        head = self.model.get_output_embeddings()
        index = torch.arange(rows, device=rest.device)
        kwargs = dict(input_ids=rest, attention_mask=mask, cache=cache, position_ids=positions,
                      use_cache=True)
        if decoder is None or head is None or decoder is self.model:
            return self.model(**kwargs).logits[index, last]
        hidden = decoder(**kwargs).last_hidden_state
        return head(hidden[index, last])

    def _score(self, pairs: list[tuple[list[int], list[int]]]) -> list[float]:
        seqs = [h + t for h, t in pairs]
        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=self.device)
        attention = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=self.device)
        logits = self.model(input_ids=input_ids, attention_mask=attention).logits.float()
        logps = logits[:, :-1].log_softmax(-1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        out = []
        for r, (head, tail) in enumerate(pairs):
            # Token t of the sequence is predicted at position t - 1.
            out.append(float(logps[r, len(head) - 1 : len(head) - 1 + len(tail)].sum()))
        return out
