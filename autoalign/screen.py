"""Screen a round's training data before it trains: what a signal emits is passed on to the policy, so biased,
toxic, leaked or degenerate targets are dropped here, each with its reason, and counted in the train stage's
manifest and the report.

Rules, in order (the first that applies is the reason a row is dropped):

- ``empty`` / ``too_long``: a target with no text, or longer than ``max_chars``;
- ``identical_pair``: a preference whose chosen and rejected responses are the same text (it teaches nothing);
- ``duplicate``: the same prompt and target (normalised: case, whitespace and punctuation ignored) as an earlier
  row of the round, so one target is not trained several times over because several samples agreed;
- ``pii``: the target holds an e-mail address, a phone number, a US social-security number or a card number;
- ``toxic``: the target (a chosen response, an SFT answer) is toxic by the toxicity scorer's lexicon
  (``autoalign.evaluate.toxicity.is_toxic``, the same one the harmlessness suites use; no ground truth is read);
- ``refusal`` (only with ``refusals: drop``): the target refuses. Off by default: refusing a harmful request is
  what harmlessness asks, and a screen cannot tell harmful from benign without the ground truth it never reads;
  with ``count`` the refusals kept are counted, so a round that trains the policy to refuse everything shows.
"""

from __future__ import annotations

import re
from typing import Callable, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from autoalign.answers import is_refusal
from autoalign.records import Preference, SFTExample

_PII = re.compile(
    r"[\w.+-]+@[\w-]+\.[\w.]+"  # e-mail
    r"|\b\d{3}-\d{2}-\d{4}\b"  # US SSN
    r"|\b(?:\d[ -]?){13,16}\b"  # card number
    r"|(?:\+\d{1,3}[ .-]?)?\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b"  # phone number
)
_NORM = re.compile(r"[\W_]+")


class ScreenConfig(BaseModel):
    """``train.screen``: on by default; every rule can be turned off."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    max_chars: int = Field(4000, ge=1)  # a target or pair longer than this many characters is dropped
    duplicates: bool = True  # drop repeated (prompt, target) rows and pairs whose two answers are the same
    pii: bool = True  # drop targets that carry an e-mail address, a phone or card number
    toxicity: bool = True  # drop targets the toxicity lexicon flags
    # refusing targets: ``count`` them (reported), ``drop`` them, or ``off`` (not looked at)
    refusals: Literal["count", "drop", "off"] = "count"


def normalise(text: str) -> str:
    return _NORM.sub(" ", text.lower()).strip()


def has_pii(text: str) -> bool:
    return bool(_PII.search(text))


class Screened(BaseModel):
    sft: list[SFTExample]
    preferences: list[Preference]
    counts: dict[str, dict[str, int]]  # {"sft": {"kept": n, "<reason>": m}, "preferences": {...}}
    dropped: list[dict]  # {"kind", "prompt_id", "signal", "reason", "target"} per dropped row


def _target_reason(text: str, cfg: ScreenConfig, is_toxic: Callable[[str], bool]) -> str | None:
    if not text.strip():
        return "empty"
    if len(text) > cfg.max_chars:
        return "too_long"
    if cfg.pii and has_pii(text):
        return "pii"
    if cfg.toxicity and is_toxic(text):
        return "toxic"
    if cfg.refusals == "drop" and is_refusal(text):
        return "refusal"
    return None


def screen(sft: Sequence[SFTExample], preferences: Sequence[Preference], cfg: ScreenConfig) -> Screened:
    """The rows that pass, in their order, with counts per reason (module docstring); a pure function."""
    from autoalign.evaluate.toxicity import is_toxic

    if not cfg.enabled:
        return Screened(sft=list(sft), preferences=list(preferences), dropped=[],
                        counts={"sft": {"kept": len(sft)}, "preferences": {"kept": len(preferences)}})
    counts: dict[str, dict[str, int]] = {"sft": {"kept": 0}, "preferences": {"kept": 0}}
    dropped: list[dict] = []
    kept_sft: list[SFTExample] = []
    kept_prefs: list[Preference] = []
    seen: set[tuple] = set()

    def drop(kind: str, row: SFTExample | Preference, target: str, reason: str) -> None:
        counts[kind][reason] = counts[kind].get(reason, 0) + 1
        dropped.append({"kind": kind, "prompt_id": row.prompt_id, "signal": row.signal, "reason": reason,
                        "target": target[:500]})

    for ex in sft:
        target = ex.messages[-1]["content"] if ex.messages and ex.messages[-1].get("role") == "assistant" else ""
        reason = _target_reason(target, cfg, is_toxic)
        key: tuple = ("sft", normalise(" ".join(m["content"] for m in ex.messages[:-1])), normalise(target))
        if reason is None and cfg.duplicates and key in seen:
            reason = "duplicate"
        if reason is not None:
            drop("sft", ex, target, reason)
            continue
        seen.add(key)
        kept_sft.append(ex)
        counts["sft"]["kept"] += 1
        if cfg.refusals == "count" and is_refusal(target):
            counts["sft"]["kept_refusals"] = counts["sft"].get("kept_refusals", 0) + 1

    for p in preferences:
        identical = normalise(p.chosen) == normalise(p.rejected)
        reason = "identical_pair" if identical else _target_reason(p.chosen, cfg, is_toxic)
        key = ("pref", normalise(" ".join(m["content"] for m in p.prompt)), normalise(p.chosen), normalise(p.rejected))
        if reason is None and cfg.duplicates and key in seen:
            reason = "duplicate"
        if reason is not None:
            drop("preferences", p, p.chosen, reason)
            continue
        seen.add(key)
        kept_prefs.append(p)
        counts["preferences"]["kept"] += 1
        if cfg.refusals == "count" and is_refusal(p.chosen):
            counts["preferences"]["kept_refusals"] = counts["preferences"].get("kept_refusals", 0) + 1
    return Screened(sft=kept_sft, preferences=kept_prefs, counts=counts, dropped=dropped)


def drop_reasons(counts: dict[str, dict[str, int]]) -> dict[str, int]:
    """Dropped rows by reason, over SFT examples and pairs (for the console line)."""
    out: dict[str, int] = {}
    for per_kind in counts.values():
        for reason, n in per_kind.items():
            if reason not in ("kept", "kept_refusals"):
                out[reason] = out.get(reason, 0) + n
    return out
