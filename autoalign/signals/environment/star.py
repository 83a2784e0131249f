"""STaR, the Self-Taught Reasoner (Zelikman et al. 2022), as a verifier signal (DESIGN.md, "environment feedback").

STaR bootstraps reasoning from the model's own rationales: keep the rationales that reach the verified answer as
fine-tuning targets; for the problems the model fails, *rationalise*: show it the answer as a hint, let it produce a
rationale for that answer, keep the ones that reach it, and train on them as if the model had found them without
the hint (the paper's Algorithm 1: the hint is removed from the training example).

Here the verifier is the environment (``ExecutionCheck``: calculator, interpreter, unit tests) and the hint is what
the environment itself computes, never the lab's ground truth: for ``calc`` / ``python_expr`` the value the sandbox
prints for the expression (``expr_program`` through ``autoalign.sandbox.run_many``, as the check runs it);
``python_tests`` has no answer to hint, so those failures are counted and not rationalised. A rationale is verified
against the ORIGINAL prompt and its training messages are the original prompt + the rationale. A rationale that
copies the hint sentence itself is dropped (it would teach the model to cite a hint it will never see).

Labels: one per round sample (``kind="unit"``, score 1/0 from the check, ``selected`` for the kept ones);
rationalised targets are not round samples, so they appear in ``stats`` (counts and the prompt ids).
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from autoalign.models.base import LM, Sampling
from autoalign.records import Label, Prompt, Sample, SFTExample, stable_id
from autoalign.sandbox import run_many
from autoalign.signals.base import SignalResult, StageContext
from autoalign.signals.environment.execution import ExecutionCheck, calc_value, check_by_prompt, expr_program

HINTABLE = ("calc", "python_expr")  # kinds whose environment computes an answer to hint


def hint_value(kind: str, stdout: str) -> str | None:
    """The answer the environment computed, as the hint shows it: the calculator's number, or the interpreter's
    printed value (what ``ExecutionCheck`` compares after ``normalise``); None when there is none."""
    if kind == "calc":
        v = calc_value(stdout)
        return None if v is None else str(v)
    s = stdout.strip()
    return s or None


def prompt_seed(seed: int, prompt_id: str) -> int:
    """The sampling seed of one prompt's rationalisation: a function of (signal seed, prompt id) only, so how the
    prompts are batched or ordered never changes a rationale."""
    return int(stable_id(str(seed), "star", prompt_id), 16) & ((1 << 63) - 1)


class STaR:
    """``rationalise``: on prompts with no correct sample, ask again with the answer as a hint (STaR's
    rationalisation); ``rationalise_samples``: hinted attempts per such prompt; ``hint_template``: the hinted
    prompt, with ``{question}`` and ``{answer}``.

    Keep correct rationales (at most ``max_per_prompt`` distinct per prompt) as SFT targets; where none is
    correct and ``rationalise`` is on, ask the policy ``rationalise_samples`` times with the environment's answer
    as a hint (``hint_template`` with ``{question}`` and ``{answer}``), verify on the original prompt, and keep the
    correct ones without the hint. ``temperature`` / ``max_new_tokens`` / ``seed`` are the rationalisation's
    sampling; ``timeout_s`` / ``memory_mb`` / ``workers`` the sandbox's limits."""

    name = "star"

    def __init__(self, max_per_prompt: int = 2, rationalise: bool = True, rationalise_samples: int = 2,
                 hint_template: str = "{question}\n(Hint: the answer is {answer}.)", temperature: float = 0.7,
                 max_new_tokens: int = 64, timeout_s: float = 5.0, memory_mb: int = 512,
                 workers: int | None = None, seed: int = 0) -> None:
        if max_per_prompt < 1:
            raise ValueError("star: max_per_prompt must be >= 1")
        if rationalise_samples < 1:
            raise ValueError("star: rationalise_samples must be >= 1")
        if temperature < 0 or max_new_tokens < 1:
            raise ValueError("star: temperature must be >= 0 and max_new_tokens >= 1")
        if timeout_s <= 0 or memory_mb <= 0:
            raise ValueError("star: timeout_s and memory_mb must be positive")
        try:
            probe = hint_template.format(question="\x00q", answer="\x00a")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"star: hint_template takes only {{question}} and {{answer}} ({exc!r})") from None
        if "\x00q" not in probe or "\x00a" not in probe:
            raise ValueError("star: hint_template must contain {question} and {answer}")
        self.max_per_prompt = max_per_prompt
        self.rationalise = rationalise
        self.rationalise_samples = rationalise_samples
        self.hint_template = hint_template
        self.temperature = temperature
        self.max_new_tokens = max_new_tokens
        self.timeout_s, self.memory_mb, self.workers = timeout_s, memory_mb, workers
        self.seed = seed
        self.check = ExecutionCheck(timeout_s=timeout_s, memory_mb=memory_mb, workers=workers)

    # ---- the hint ---------------------------------------------------------------------------------------------
    def hinted(self, prompt: Prompt, answer: str) -> list[dict[str, str]]:
        """The prompt with the hint appended to its last user message (earlier turns kept as they are)."""
        msgs = [dict(m) for m in prompt.messages]
        last = max((i for i, m in enumerate(msgs) if m.get("role") == "user"), default=len(msgs) - 1)
        msgs[last]["content"] = self.hint_template.format(question=msgs[last]["content"], answer=answer)
        return msgs

    def hint_sentence(self, answer: str) -> str:
        """What the template adds to the question: a rationale containing it copied the hint."""
        return self.hint_template.format(question="", answer=answer).strip()

    def _answers(self, prompts: Sequence[Prompt]) -> dict[str, str | None]:
        """The environment's answer per prompt id, all expressions in one sandbox batch (identical ones once)."""
        programs = {p.id: expr_program(str((p.env or {}).get("expr", "")), str((p.env or {}).get("kind")))
                    for p in prompts}
        distinct = list(dict.fromkeys(programs.values()))
        if not distinct:
            return {}
        results = dict(zip(distinct, run_many(distinct, timeout_s=self.timeout_s, memory_mb=self.memory_mb,
                                              workers=self.workers)))
        out: dict[str, str | None] = {}
        for p in prompts:
            r = results[programs[p.id]]
            out[p.id] = hint_value(str((p.env or {}).get("kind")), r.stdout) if r.ok else None
        return out

    # ---- the signal -------------------------------------------------------------------------------------------
    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM | None = None,
                 ctx: StageContext | None = None) -> SignalResult:
        stats: Counter[str] = Counter()
        todo, by_prompt = check_by_prompt(prompts, samples, self.check, stats)

        out = SignalResult()
        failed: list[Prompt] = []
        for p, group in todo:
            mine = by_prompt[p.id]
            if any(not sc.ok for sc in mine):  # the environment itself failed: no verdict, no hint
                stats["skipped_env_failed"] += 1
                continue
            stats["checked_prompts"] += 1
            correct = [sc.value == 1.0 for sc in mine]
            kept: list[str] = []
            for s, ok, sc in zip(group, correct, mine):
                keep = ok and s.text not in kept and len(kept) < self.max_per_prompt
                if keep:
                    kept.append(s.text)
                out.labels.append(Label(prompt_id=p.id, sample_index=s.index, signal=self.name,
                                        verdict="correct" if ok else "incorrect", score=1.0 if ok else 0.0,
                                        kind="unit", selected=keep, detail=dict(sc.detail)))
            stats["correct_samples"] += sum(correct)
            if kept:
                stats["correct_direct"] += 1
                out.sft.extend(self._example(p, t) for t in kept)
            else:
                failed.append(p)
        stats["sft_direct"] = len(out.sft)

        rationalised = self._rationalise(failed, policy, stats, out)
        n = len(out.labels)
        out.stats = {
            "prompts": len(prompts),
            "checked_prompts": stats["checked_prompts"],
            "samples_checked": n,
            "correct_samples": stats["correct_samples"],
            "accuracy": round(stats["correct_samples"] / n, 6) if n else 0.0,
            "correct_direct": stats["correct_direct"],
            "failed_prompts": len(failed),
            "rationalised_asked": stats["rationalised_asked"],
            "rationalised_samples": stats["rationalised_samples"],
            "rationalised_correct": stats["rationalised_correct"],
            "rationalised_echoed_hint": stats["rationalised_echoed_hint"],
            "rationalised_prompts": len(rationalised),
            "rationalised_prompt_ids": rationalised,
            "sft_direct": stats["sft_direct"],
            "sft_rationalised": len(out.sft) - stats["sft_direct"],
            "sft": len(out.sft),
            "skipped_no_env": stats["skipped_no_env"],
            "skipped_unknown_env": stats["skipped_unknown_env"],
            "skipped_no_samples": stats["skipped_no_samples"],
            "skipped_env_failed": stats["skipped_env_failed"],
            "skipped_no_hint_python_tests": stats["skipped_no_hint_python_tests"],
            "skipped_hint_env_failed": stats["skipped_hint_env_failed"],
            "skipped_rationalise_off": stats["skipped_rationalise_off"],
            "skipped_no_policy": stats["skipped_no_policy"],
        }
        return out

    def _example(self, prompt: Prompt, text: str) -> SFTExample:
        """The training target: the ORIGINAL prompt (no hint) + the rationale."""
        return SFTExample(prompt_id=prompt.id, signal=self.name,
                          messages=[*prompt.messages, {"role": "assistant", "content": text}])

    def _rationalise(self, failed: list[Prompt], policy: LM | None, stats: Counter[str],
                     out: SignalResult) -> list[str]:
        """STaR's rationalisation step for the prompts no round sample solved; returns the ids that gained a
        target. Each prompt is sampled with its own seed (``prompt_seed``), then every rationale is verified in
        one sandbox batch against its original prompt."""
        hintable = []
        for p in failed:
            kind = (p.env or {}).get("kind")
            if kind not in HINTABLE:
                stats["skipped_no_hint_python_tests"] += 1
            elif not self.rationalise:
                stats["skipped_rationalise_off"] += 1
            elif policy is None:
                stats["skipped_no_policy"] += 1
            else:
                hintable.append(p)
        if not hintable or policy is None:
            return []
        answers = self._answers(hintable)
        asked: list[tuple[Prompt, str, list[str]]] = []
        for p in hintable:
            answer = answers.get(p.id)
            if answer is None:
                stats["skipped_hint_env_failed"] += 1
                continue
            sampling = Sampling(n=self.rationalise_samples, temperature=self.temperature,
                                max_new_tokens=self.max_new_tokens, seed=prompt_seed(self.seed, p.id))
            texts = [c.text for c in policy.generate([self.hinted(p, answer)], sampling)[0]]
            stats["rationalised_asked"] += 1
            stats["rationalised_samples"] += len(texts)
            asked.append((p, answer, texts))

        flat = [(p, t) for p, _, texts in asked for t in texts]
        scores = self.check([p for p, _ in flat], [t for _, t in flat]) if flat else []
        it = iter(scores)
        gained: list[str] = []
        for p, answer, texts in asked:
            kept: list[str] = []
            echo = self.hint_sentence(answer)
            for t in texts:
                sc = next(it)
                if sc.value != 1.0:
                    continue
                stats["rationalised_correct"] += 1
                if echo and echo in t:
                    stats["rationalised_echoed_hint"] += 1
                    continue
                if t not in kept and len(kept) < self.max_per_prompt:
                    kept.append(t)
            if kept:
                gained.append(p.id)
                out.sft.extend(self._example(p, t) for t in kept)
        return gained


__all__ = ["HINTABLE", "STaR", "hint_value", "prompt_seed"]
