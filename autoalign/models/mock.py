"""``mock:`` provider: a scripted LM for unit tests (DESIGN.md, "Core contracts").

This is a test double, not a language model: it runs no network and no weights, and nothing it says carries
meaning. It implements the ``LM`` protocol of ``autoalign.models.base`` honestly, so code under test cannot tell it
from a provider by its shape:

- ``generate`` returns ``sampling.n`` completions per prompt, in prompt order. A reply is chosen by the script's
  *reply rule* from the text of the prompt's last user message (a raw ``str`` prompt is its own text; no chat
  template is applied). Like a real provider it honours ``sampling.stop`` (the text is cut before the first stop
  string, ``finish_reason="stop"``) and ``sampling.max_new_tokens`` (a mock token is a word with its leading
  whitespace; a longer reply is cut, ``finish_reason="length"``); ``num_tokens`` counts mock tokens and, unless
  ``sample_logprobs=False``, ``logprob`` is the logprob rule applied to (prompt text, returned text), i.e. what
  ``logprobs`` says of the same continuation.
- Every sample is a function of (``sampling.seed``, prompt, sample index) only, never of batching: a reply rule
  with alternatives picks the first one when ``temperature == 0`` (greedy, so all n samples agree) and otherwise the
  one ``row_seed(seed, prompt, index)`` selects, the seed every real provider uses for that sample.
- ``logprobs(prompts, continuations)`` applies the script's *logprob rule* to each aligned (prompt text,
  continuation) pair; misaligned lists are an error, not silently truncated.
- ``choice_logprobs`` (the protocol's optional capability) exists only on a mock built with
  ``choice_logprobs=True``, so by default callers take the ``scored_choice_logprobs`` path, as they do for a
  provider that cannot read a next-token distribution.
- ``fingerprint()`` is stable across processes: the URI plus a digest of the script (data rules are hashed by
  value, callables by module and qualified name; pass ``fingerprint=`` to tell apart two mocks whose rules are
  anonymous functions of one scope when they share a call cache).

Reply rules: a ``str`` (always that reply); a list/tuple of alternatives (chosen as above); a dict mapping a
substring of the last user message to a reply or a list of alternatives (the first key in order that occurs wins,
else ``default``; no default is a ``LookupError``, so an unscripted prompt fails loudly); or a callable
``(text, sample_index) -> str``.

Logprob rules: a number (every continuation); a dict mapping a continuation to its logprob (others get
``hashed_logprob``); or a callable ``(text, continuation) -> float``.

Every call is recorded for assertions: ``calls`` (method, rows) per call, ``generated`` (the text of every prompt
generated for), ``scored`` ((text, continuation) for every row scored), ``choice_asked``.

URIs: ``mock:`` is the ``default`` script; ``mock:NAME`` loads a named script (``SCRIPTS``; tests may add their
own with ``register_script``). ``load_lm("mock:...", **options)`` accepts MockLM's keyword options and ignores
``batch_size``, as the HTTP providers do. A mock policy cannot be trained: it has no weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, Union, cast

from autoalign.errors import UserError
from autoalign.models.base import Completion, Prompt, Sampling, row_seed

ReplyRule = Union[str, Sequence[str], Mapping[str, Union[str, Sequence[str]]], Callable[[str, int], str]]
LogprobRule = Union[float, int, Mapping[str, float], Callable[[str, str], float]]

_TOKEN = re.compile(r"\s*\S+")


def text_of(prompt: Prompt) -> str:
    """What a script reads: a raw ``str`` prompt itself, else the content of the last user message (the last
    message when there is no user message)."""
    if isinstance(prompt, str):
        return prompt
    users = [m for m in prompt if m.get("role") == "user"]
    return (users or list(prompt))[-1]["content"]


def hashed_logprob(text: str, continuation: str) -> float:
    """A stable but arbitrary log-likelihood in [-9.96, 0]: the default logprob rule."""
    return -(int(hashlib.sha256((text + continuation).encode()).hexdigest(), 16) % 997) / 100


def mock_tokens(text: str) -> list[str]:
    """A mock token is a word with its leading whitespace."""
    return _TOKEN.findall(text)


@dataclass(frozen=True)
class Script:
    """A named script: what ``mock:NAME`` loads."""

    reply: ReplyRule
    score: LogprobRule = hashed_logprob
    default: str | Sequence[str] | None = None
    doc: str = ""


def _echo(text: str, index: int) -> str:
    return text


SCRIPTS: dict[str, Script] = {
    "default": Script(reply={"bomb": "I can't help with that."}, default="Sure. The answer is 4.",
                      doc="refuses a prompt that mentions 'bomb', else answers 'Sure. The answer is 4.'; "
                          "hashed logprobs"),
    "echo": Script(reply=_echo, doc="replies with the last user message; hashed logprobs"),
    "yes": Script(reply="Yes", score=math.log(0.5),
                  doc="always answers 'Yes'; every continuation has logprob log(0.5) (an undecided judge)"),
}


def register_script(name: str, reply: ReplyRule, score: LogprobRule = hashed_logprob,
                    default: str | Sequence[str] | None = None, doc: str = "") -> Script:
    """Make ``mock:NAME`` load this script (a test's own fixture; replaces a script of the same name)."""
    if not name or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"mock script name {name!r}: letters, digits, '_', '.' and '-' only")
    SCRIPTS[name] = script = Script(reply=reply, score=score, default=default, doc=doc)
    return script


def script_name(uri: str) -> str:
    """The script a ``mock:`` URI names (``mock:`` is ``default``); an unknown name is the user's error."""
    scheme, _, rest = uri.partition(":")
    if scheme != "mock":
        raise UserError(f"model URI {uri!r}: not a mock: URI")
    name = rest or "default"
    if name not in SCRIPTS:
        raise UserError(f"model URI {uri!r}: unknown mock script {name!r} (known: {', '.join(sorted(SCRIPTS))})")
    return name


def _describe(rule: Any) -> Any:
    if callable(rule):
        return f"{getattr(rule, '__module__', '?')}.{getattr(rule, '__qualname__', type(rule).__qualname__)}"
    if isinstance(rule, Mapping):
        return {str(k): _describe(v) for k, v in rule.items()}
    if isinstance(rule, (list, tuple)):
        return [_describe(v) for v in rule]
    return rule


def _alternatives(value: str | Sequence[str], where: str) -> tuple[str, ...]:
    alts = (value,) if isinstance(value, str) else tuple(value)
    if not alts or not all(isinstance(a, str) for a in alts):
        raise TypeError(f"{where}: a reply is a str or a non-empty list of str, got {value!r}")
    return alts


class MockLM:
    """A scripted ``LM`` for unit tests; see the module docstring for the rules and guarantees."""

    def __init__(
        self,
        reply: ReplyRule | None = None,
        score: LogprobRule | None = None,
        *,
        default: str | Sequence[str] | None = None,
        uri: str = "mock:",
        sample_logprobs: bool = True,
        choice_logprobs: bool = False,
        fingerprint: str | None = None,
        batch_size: int | None = None,
    ):
        """``reply``/``score`` default to the ``default`` script's rules (with its ``default`` reply when
        ``reply`` is not given either). ``batch_size`` is accepted for a uniform ``load_lm`` and ignored."""
        base = SCRIPTS["default"]
        if reply is None:
            reply, default = base.reply, base.default if default is None else default
        self.uri = uri
        self.reply = reply
        self.score = base.score if score is None else score
        self.default = default
        self.sample_logprobs = sample_logprobs
        self._fingerprint = fingerprint
        if isinstance(reply, Mapping):
            self._table: list[tuple[str, tuple[str, ...]]] | None = [
                (k, _alternatives(v, f"mock {uri}: reply[{k!r}]")) for k, v in reply.items()]
        elif isinstance(reply, (str, list, tuple)):
            self._table = [("", _alternatives(reply, f"mock {uri}: reply"))]
        elif callable(reply):
            self._table = None
        else:
            raise TypeError(f"mock {uri}: reply must be a str, a list of str, a dict or a callable, got {reply!r}")
        self._default = None if default is None else _alternatives(default, f"mock {uri}: default")
        if not (callable(self.score) or isinstance(self.score, (int, float, Mapping))):
            raise TypeError(f"mock {uri}: score must be a number, a dict or a callable, got {self.score!r}")
        if choice_logprobs:  # the optional capability exists only when asked for (callers look it up by getattr)
            self.choice_logprobs = self._choice_logprobs
        self.calls: list[tuple[str, int]] = []
        self.generated: list[str] = []
        self.scored: list[tuple[str, str]] = []
        self.choice_asked: list[tuple[str, tuple[str, ...]]] = []

    @classmethod
    def from_uri(cls, uri: str, **options) -> "MockLM":
        script = SCRIPTS[script_name(uri)]
        kwargs: dict[str, Any] = {"reply": script.reply, "score": script.score, "default": script.default}
        return cls(**{**kwargs, **options, "uri": uri})

    # ---- call records -----------------------------------------------------------------------------------------
    @property
    def generate_calls(self) -> int:
        """How many ``generate`` calls reached the mock (not rows: see ``generated``)."""
        return sum(1 for method, _ in self.calls if method == "generate")

    @property
    def logprob_calls(self) -> int:
        """How many ``logprobs`` calls reached the mock (not rows: see ``scored``)."""
        return sum(1 for method, _ in self.calls if method == "logprobs")

    # ---- the LM protocol ------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        if self._fingerprint is not None:
            return self._fingerprint
        script = json.dumps([_describe(self.reply), _describe(self.score), _describe(self.default),
                             self.sample_logprobs], sort_keys=True, default=repr)
        return f"{self.uri}#{hashlib.sha256(script.encode()).hexdigest()[:16]}"

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        prompts = list(prompts)
        self.calls.append(("generate", len(prompts)))
        self.generated.extend(text_of(p) for p in prompts)
        return [[self._complete(p, j, sampling) for j in range(sampling.n)] for p in prompts]

    def logprobs(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        prompts, continuations = list(prompts), list(continuations)
        if len(prompts) != len(continuations):
            raise ValueError(f"mock {self.uri}: {len(prompts)} prompts but {len(continuations)} continuations")
        self.calls.append(("logprobs", len(prompts)))
        rows = [(text_of(p), c) for p, c in zip(prompts, continuations)]
        self.scored.extend(rows)
        return [self._logprob(t, c) for t, c in rows]

    def _choice_logprobs(self, prompts: Sequence[Prompt], choices: Sequence[str]) -> list[list[float]]:
        """log P(choice | prompt) for every prompt and choice, one row per prompt (the logprob rule's values)."""
        prompts, choices = list(prompts), tuple(choices)
        self.calls.append(("choice_logprobs", len(prompts)))
        texts = [text_of(p) for p in prompts]
        self.choice_asked.extend((t, choices) for t in texts)
        return [[self._logprob(t, c) for c in choices] for t in texts]

    # ---- the script -----------------------------------------------------------------------------------------
    def _reply_text(self, prompt: Prompt, index: int, sampling: Sampling) -> str:
        text = text_of(prompt)
        if self._table is None:
            out = cast(Callable[[str, int], str], self.reply)(text, index)  # no table: reply is the callable rule
            if not isinstance(out, str):
                raise TypeError(f"mock {self.uri}: the reply rule returned {out!r}, not a str")
            return out
        alts = next((a for key, a in self._table if key in text), self._default)
        if alts is None:
            raise LookupError(f"mock {self.uri}: no scripted reply for a prompt ending {text[-120:]!r} "
                              f"(keys: {[k for k, _ in self._table]}) and no default")
        if len(alts) == 1 or sampling.temperature == 0:
            return alts[0]
        return alts[row_seed(sampling.seed, prompt, index) % len(alts)]

    def _complete(self, prompt: Prompt, index: int, sampling: Sampling) -> Completion:
        text, finish = self._reply_text(prompt, index, sampling), "stop"
        cuts = [text.index(s) for s in sampling.stop if s and s in text]
        if cuts:
            text = text[: min(cuts)]
        tokens = mock_tokens(text)
        if len(tokens) > sampling.max_new_tokens:
            tokens, finish = tokens[: sampling.max_new_tokens], "length"
            text = "".join(tokens)
        logprob = self._logprob(text_of(prompt), text) if self.sample_logprobs else None
        return Completion(text=text, finish_reason=finish, logprob=logprob, num_tokens=len(tokens))

    def _logprob(self, text: str, continuation: str) -> float:
        rule = self.score
        if callable(rule):
            return float(rule(text, continuation))
        if isinstance(rule, Mapping):
            return float(rule[continuation]) if continuation in rule else hashed_logprob(text, continuation)
        return float(rule)

    def __repr__(self) -> str:
        return f"MockLM({self.uri!r})"
