"""The 3H gate: a round that buys one axis with another is not kept.

After a round's evaluation every compared figure (each suite's 3H axis scores and its headline metrics, public
suites included) is set against the last kept policy's, as a *change* oriented so that positive is better, with a
95% interval. A figure *falls beyond its noise* when that whole interval lies below ``-tolerance``. The interval:

- **paired**, for a suite that stores its graded items (the lab suite: ``config["items"]``): both rounds answered
  the same items, so the change is measured item by item, with a paired percentile bootstrap over items
  (``autoalign.evaluate.lab_suite.paired_change``). Most items keep their verdict from one round to the next, and
  that shared part cancels, so a real loss shows at lab sizes where comparing two intervals could not see it;
- **from the two CIs**, for any other suite: change +- (z / 1.96) * sqrt(h_kept^2 + h_new^2), with h the half-width
  of each figure's 95% CI (h = 1.96 SE, so at z = 1.96 this is the two-sample z-test's 95% interval,
  1.96 * sqrt(SE_kept^2 + SE_new^2)). It needs nothing but the interval every suite reports; on the same items it
  is conservative (it ignores the items' correlation, so it rejects only clear losses).

Pure functions of the results: the decision is recomputed on every rerun, so a resumed run decides the same.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

AXES = ("helpful", "harmless", "honest", "composite")
Z95 = 1.959963984540054  # the normal quantile of the suites' 95% intervals


class GateConfig(BaseModel):
    """``eval.gate``: on by default. ``z``: the half-width of the CI-based interval of a change, in standard
    errors of the change (1.96: a 95% interval); ``tolerance``: a fall always allowed (on the metric's own scale); ``metrics``:
    ``axes`` (each suite's 3H axis scores) or ``axes+headline`` (also each suite's headline metrics)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    z: float = Field(1.96, ge=0.0)
    tolerance: float = Field(0.0, ge=0.0)
    metrics: str = Field("axes+headline", pattern="^(axes|axes\\+headline)$")


class Comparison(BaseModel):
    suite: str
    metric: str
    kept: float
    new: float
    change: float  # oriented: positive is better
    lo: float  # the change's 95% interval
    hi: float
    test: str  # "paired-bootstrap" or "ci-z"
    fell: bool  # the whole interval below -tolerance

    @property
    def noise(self) -> float:
        return (self.hi - self.lo) / 2.0


class GateDecision(BaseModel):
    kept: bool
    against_round: int
    comparisons: list[Comparison] = Field(default_factory=list)

    @property
    def regressions(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.fell]

    def reason(self) -> str:
        if self.kept:
            return f"kept: no figure fell beyond its noise against round {self.against_round}"
        parts = [f"{c.suite}.{c.metric} {c.kept:.3f} -> {c.new:.3f} (change {c.change:+.3f}, 95% CI "
                 f"[{c.lo:+.3f}, {c.hi:+.3f}], {c.test})" for c in self.regressions]
        return f"rejected against round {self.against_round}: " + "; ".join(parts)


def half_width(m: dict) -> float:
    return max(0.0, (float(m["hi"]) - float(m["lo"])) / 2.0)


def compared_metrics(result: dict, which: str) -> Iterable[str]:
    """The figures of one suite result the gate reads: its axis scores, and its headline metrics."""
    names = [n for n in result["metrics"] if n in AXES]
    if which == "axes+headline":
        names += [n for n in result.get("config", {}).get("headline", []) if n in result["metrics"]]
    seen: set[str] = set()
    for n in names:
        if n not in seen and result["metrics"][n].get("axis") != "signal":
            seen.add(n)
            yield n


def orient(m: dict, two_sided: bool) -> float:
    """The figure on a better-is-higher line: a lower-is-better rate negated, a two-sided score (best at 0) as
    minus its distance from 0."""
    v = float(m["value"])
    if two_sided:
        return -abs(v)
    return v if m.get("higher_is_better", True) else -v


def change_interval(old: dict, new: dict, name: str, two_sided: bool, cfg: GateConfig,
                    seed: int) -> tuple[float, float, float, str]:
    """(change, lo, hi, test) for one figure: paired over items when both results store them, else from the CIs."""
    items_old, items_new = old.get("config", {}).get("items"), new.get("config", {}).get("items")
    if items_old and items_new and not two_sided:
        from autoalign.evaluate.lab_suite import paired_change

        found = paired_change(items_old, items_new, name, seed=seed)
        if found is not None:
            change, lo, hi, _ = found
            if not new["metrics"][name].get("higher_is_better", True):
                change, lo, hi = -change, -hi, -lo
            return change, lo, hi, "paired-bootstrap"
    k, n = old["metrics"][name], new["metrics"][name]
    change = orient(n, two_sided) - orient(k, two_sided)
    half = (cfg.z / Z95) * math.hypot(half_width(k), half_width(n))  # h = Z95 * SE: back to SEs, then z of them
    return change, change - half, change + half, "ci-z"


def decide(kept_results: Sequence[dict], new_results: Sequence[dict], cfg: GateConfig,
           against_round: int, seed: int = 0) -> GateDecision:
    """Compare every suite of ``new_results`` that the kept round also measured (variants of the policy, such as
    best-of-n, and the signal-agreement suite are not the policy and are left out)."""
    kept_by = {r["suite"]: r for r in kept_results if _is_policy_suite(r)}
    comparisons = []
    for new in new_results:
        old = kept_by.get(new["suite"])
        if old is None or not _is_policy_suite(new):
            continue
        two = set(new.get("config", {}).get("two_sided") or ())
        for name in compared_metrics(new, cfg.metrics):
            if name not in old["metrics"]:
                continue
            change, lo, hi, test = change_interval(old, new, name, name in two, cfg, seed)
            comparisons.append(Comparison(
                suite=new["suite"], metric=name, kept=float(old["metrics"][name]["value"]),
                new=float(new["metrics"][name]["value"]), change=round(change, 6), lo=round(lo, 6),
                hi=round(hi, 6), test=test, fell=hi < -cfg.tolerance))
    return GateDecision(kept=not any(c.fell for c in comparisons), against_round=against_round,
                        comparisons=comparisons)


def _is_policy_suite(result: dict) -> bool:
    return "variant_of" not in result.get("config", {}) and result["suite"] != "judge_agreement"


def summary(decision: GateDecision | None) -> dict[str, Any] | None:
    """What ``metrics.json`` keeps of a decision (the report reads it)."""
    if decision is None:
        return None
    return {"kept": decision.kept, "against_round": decision.against_round, "reason": decision.reason(),
            "comparisons": [c.model_dump() for c in decision.comparisons]}
