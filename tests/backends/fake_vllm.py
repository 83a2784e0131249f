"""A stand-in for the ``vllm`` module, for testing ``VLLMModel``'s glue where vLLM cannot run (no CUDA here).

It is honest about what it is: the parts of vLLM's offline API that ``VLLMModel`` uses (``LLM(model=...)``,
``get_tokenizer()``, ``generate(prompts, sampling_params, use_tqdm=)`` with ``{"prompt_token_ids": [...]}``
prompts and one ``SamplingParams`` per prompt or one for all, ``RequestOutput.outputs[0]`` with ``text``,
``token_ids``, ``cumulative_logprob``, ``logprobs``, ``finish_reason``, and ``RequestOutput.prompt_logprobs`` as
``[None, {token_id: Logprob}, ...]``), computed by a real transformers model, token by token. It checks that the
provider builds requests and reads answers right; it says nothing about vLLM's speed or its numerics.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass, field

import torch


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int | None = 16
    seed: int | None = None
    stop: list[str] | None = None
    logprobs: int | None = None
    prompt_logprobs: int | None = None


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None


@dataclass
class RequestOutput:
    request_id: str
    prompt_token_ids: list[int]
    prompt_logprobs: list[dict[int, Logprob] | None] | None
    outputs: list[CompletionOutput] = field(default_factory=list)


class LLM:
    instances: list["LLM"] = []

    def __init__(self, model: str, **engine_options):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_name = model
        self.engine_options = engine_options
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModelForCausalLM.from_pretrained(model).eval()
        self.requests: list[tuple[list[int], SamplingParams]] = []
        LLM.instances.append(self)

    def get_tokenizer(self):
        return self.tokenizer

    @torch.inference_mode()
    def generate(self, prompts, sampling_params=None, use_tqdm=True):
        if not isinstance(sampling_params, list):
            sampling_params = [sampling_params or SamplingParams()] * len(prompts)
        assert len(sampling_params) == len(prompts)
        pairs = enumerate(zip(prompts, sampling_params))
        return [self._one(str(k), list(p["prompt_token_ids"]), sp) for k, (p, sp) in pairs]

    def _logps(self, ids: list[int]) -> torch.Tensor:
        return self.model(torch.tensor([ids])).logits[0].double().log_softmax(-1)

    def _one(self, request_id: str, ids: list[int], sp: SamplingParams) -> RequestOutput:
        self.requests.append((ids, sp))
        prompt_lps = None
        if sp.prompt_logprobs is not None:
            lp = self._logps(ids)
            prompt_lps = [None] + [{ids[t]: Logprob(float(lp[t - 1, ids[t]]))} for t in range(1, len(ids))]
        gen = torch.Generator().manual_seed(sp.seed if sp.seed is not None else 0)
        seq, new, step_lps, total = list(ids), [], [], 0.0
        finish = "length"
        for _ in range(sp.max_tokens or 16):
            raw = self._logps(seq)[-1]
            if sp.temperature == 0:
                tok = int(raw.argmax())
            else:
                probs = (raw / sp.temperature).softmax(-1)
                if sp.top_p < 1.0:
                    sorted_p, order = probs.sort(descending=True)
                    keep = sorted_p.cumsum(-1) - sorted_p < sp.top_p
                    probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
                tok = int(torch.multinomial(probs.float(), 1, generator=gen))
            seq.append(tok)
            new.append(tok)
            total += float(raw[tok])  # raw_logprobs: the untempered distribution
            step_lps.append({tok: Logprob(float(raw[tok]), rank=1)})
            if tok == self.tokenizer.eos_token_id:
                finish = "stop"
                break
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        for s in sp.stop or []:
            if s in text:
                text, finish = text[: text.index(s)], "stop"
        want_lps = sp.logprobs is not None
        out = CompletionOutput(0, text, new, total if want_lps else None, step_lps if want_lps else None, finish)
        assert math.isfinite(total)
        return RequestOutput(request_id, ids, prompt_lps, [out])


def module() -> types.ModuleType:
    """A fresh ``vllm`` module object to put in ``sys.modules``."""
    mod = types.ModuleType("vllm")
    mod.LLM = LLM
    mod.SamplingParams = SamplingParams
    mod.__fake__ = True
    LLM.instances = []
    return mod
