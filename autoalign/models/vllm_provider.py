"""vLLM provider (``vllm:MODEL``): the engine in this process, for fast generation on a GPU. Optional extra.

Why it is built this way:
- ``vllm`` is imported when a model is built, never at module import, so the rest of autoalign works without it
  (it needs CUDA and is not installed on CPU machines).
- Prompts are tokenised here exactly as ``HFModel`` does (chat template with generation prompt; raw text with the
  tokenizer's special tokens) and handed to vLLM as token ids, so both providers condition on the same tokens
  (no double BOS from re-tokenising a rendered template).
- Each (prompt, sample index) is its own request with ``seed=row_seed(seed, prompt, index)``: vLLM honours
  per-request seeds, so a sample is the same whatever the batch or the cache state, as in ``HFModel``. vLLM's
  continuous batching schedules the requests together, and prefix caching shares the prompt across samples.
- Sampled-token log-probs come from ``SamplingParams(logprobs=0)`` (vLLM's default ``raw_logprobs`` mode: the
  untempered distribution, as ``Completion.logprob`` promises); ``logprobs()`` uses ``prompt_logprobs`` over
  prompt + continuation, entry ``t`` being log P(token t | tokens < t).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

from autoalign.errors import UserError
from autoalign.models.base import Completion, Prompt, Sampling, row_seed


def _import_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise UserError(
            "vllm: models need the vLLM engine, which is not installed: pip install 'autoalign[vllm]' "
            f"(needs a CUDA GPU); or use hf:PATH or an openai: server instead ({exc})"
        ) from exc
    return vllm


class VLLMModel:
    """``LM`` on an in-process ``vllm.LLM``. ``engine_options`` go to ``vllm.LLM`` as they are."""

    def __init__(
        self,
        model: str,
        *,
        uri: str | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        dtype: str = "auto",
        max_model_len: int | None = None,
        trust_remote_code: bool = False,
        sample_logprobs: bool = True,
        batch_size: int | None = None,
        llm: Any = None,
        **engine_options: Any,
    ):
        """``batch_size`` is accepted for a uniform ``load_lm(uri, batch_size=...)`` and ignored: vLLM schedules
        its own batches. ``llm`` takes an already built ``vllm.LLM`` (to share one engine between roles)."""
        self.model = model
        self.uri = uri or f"vllm:{model}"
        # A local directory is also what training starts from (the loop reads ``path``); a hub id has none here.
        self.path = model if Path(model).is_dir() else None
        vllm = _import_vllm()
        self._SamplingParams = vllm.SamplingParams
        self.sample_logprobs = sample_logprobs
        if llm is None:
            options = dict(
                model=model,
                tensor_parallel_size=tensor_parallel_size,
                gpu_memory_utilization=gpu_memory_utilization,
                dtype=dtype,
                trust_remote_code=trust_remote_code,
                **engine_options,
            )
            if max_model_len is not None:
                options["max_model_len"] = max_model_len
            try:
                llm = vllm.LLM(**options)
            except (OSError, ValueError) as exc:
                raise UserError(f"model {self.uri}: vLLM cannot load {model}: {str(exc).splitlines()[0]}") from exc
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()
        self._fingerprint: str | None = None

    @classmethod
    def from_uri(cls, uri: str, **options) -> "VLLMModel":
        scheme, _, model = uri.partition(":")
        if scheme != "vllm" or not model:
            raise UserError(f"model URI {uri!r}: expected vllm:MODEL (a Hugging Face directory or hub id)")
        return cls(model, uri=uri, **options)

    # ---- identity -------------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """sha256 over the URI and, for a local directory, its config/tokenizer files and weight sizes+heads."""
        if self._fingerprint is None:
            h = hashlib.sha256(self.uri.encode())
            root = Path(self.model)
            if root.is_dir():
                for f in sorted(p for p in root.iterdir() if p.is_file()):
                    size = f.stat().st_size
                    h.update(f"{f.name}\x00{size}".encode())
                    with open(f, "rb") as fh:
                        h.update(fh.read(1 << 20))
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    # ---- text -----------------------------------------------------------------------------------------------
    def _encode(self, prompt: Prompt) -> list[int]:
        tok = self.tokenizer
        if isinstance(prompt, str):
            return list(tok(prompt)["input_ids"])
        text = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        return list(tok(text, add_special_tokens=False)["input_ids"])

    # ---- generation -----------------------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        prompts = list(prompts)
        greedy = sampling.temperature == 0
        per_prompt = 1 if greedy else sampling.n  # greedy samples are all the same: one request, replicated
        rows = [(i, j) for i in range(len(prompts)) for j in range(per_prompt)]
        encoded = [self._encode(p) for p in prompts]
        params = [
            self._SamplingParams(
                n=1,
                temperature=sampling.temperature,
                top_p=sampling.top_p if not greedy else 1.0,
                max_tokens=sampling.max_new_tokens,
                seed=None if greedy else row_seed(sampling.seed, prompts[i], j),
                stop=list(sampling.stop) or None,
                logprobs=0 if self.sample_logprobs else None,
            )
            for i, j in rows
        ]
        outputs = self.llm.generate([{"prompt_token_ids": encoded[i]} for i, _ in rows], params, use_tqdm=False)
        out: list[list[Completion]] = [[] for _ in prompts]
        for (i, _), result in zip(rows, outputs):
            out[i].append(self._completion(result.outputs[0]))
        if greedy:
            out = [cs * sampling.n for cs in out]
        return out

    def _completion(self, o) -> Completion:
        logprob = None
        if self.sample_logprobs:
            logprob = o.cumulative_logprob
            if logprob is None and o.logprobs is not None:
                logprob = sum(step[t].logprob for step, t in zip(o.logprobs, o.token_ids))
        return Completion(
            text=o.text,
            finish_reason="length" if o.finish_reason == "length" else "stop",
            logprob=None if logprob is None else float(logprob),
            num_tokens=len(o.token_ids),
        )

    # ---- scoring --------------------------------------------------------------------------------------------
    def logprobs(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        if len(prompts) != len(continuations):
            raise ValueError("logprobs: prompts and continuations must have the same length")
        heads = [self._encode(p) for p in prompts]
        tails = [list(self.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in continuations]
        # prompt_logprobs=1: the prompt token's own log-prob is always returned, with the top-1 beside it.
        params = self._SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        outputs = self.llm.generate(
            [{"prompt_token_ids": h + t} for h, t in zip(heads, tails)], params, use_tqdm=False
        )
        scores = []
        for head, tail, result in zip(heads, tails, outputs):
            ids = head + tail
            entries = result.prompt_logprobs  # [None, {token_id: Logprob}, ...]: entry t scores ids[t]
            scores.append(float(sum(entries[t][ids[t]].logprob for t in range(len(head), len(ids)))))
        return scores
