"""Debate (Irving et al. 2018, "AI safety via debate"; Khan et al. 2024, "Debating with More Persuasive LLMs Leads
to More Truthful Answers"): two debaters, each assigned one of two candidate answers, argue for it over ``rounds``
rounds, turn by turn (each turn reads the transcript so far); a weaker judge reads the whole transcript and picks
the answer it believes. Scalable oversight rests on the claim that arguing for the truth is easier than arguing
against it, so a judge who cannot tell the answers apart alone can tell them apart after the debate.

As a signal (``Debate``): pairs of the policy's samples of a prompt are the two candidate answers; the judge's
verdict P(A) makes the winner ``chosen`` and the loser ``rejected`` (labels of kind ``pairwise``, so evaluation's
judge agreement measures the debate against the oracle). Which sample argues as A is drawn per pair from the seed,
so the judge's position bias does not decide the pairs. How much the debate helps a judge is measured on the
evaluation side (``python -m autoalign.evaluate.debate``), with and without the debate.

The transcript uses the lab's comparison format (``Principle/Request/Response A/Response B`` and the question
``Which response follows the principle better? Answer A or B.``) with the debate's turns between the answers and
the question, so a judge with no debate (``rounds: 0``) is exactly the project's pairwise judge in one order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

from autoalign.models.base import LM, Message, Sampling
from autoalign.records import Label, Preference, Prompt, Sample
from autoalign.signals.base import SignalResult, StageContext
from autoalign.signals.model_feedback.common import (
    ModelRef,
    check_choice,
    constitution_from,
    item_rng,
    known_samples,
    principle_for,
    request_of,
)
from autoalign.signals.model_feedback.judges import FORMATS, Verdict, ask, pair_outcome
from autoalign.signals.model_feedback.rlaif import choose_pairs

SIDES = ("A", "B")
QUESTION = "Which response follows the principle better? Answer A or B."
JudgeMode = Literal["auto", "logprob", "generate"]


@dataclass(frozen=True)
class Turn:
    """One debater's argument: ``side`` 0 argues for response A, 1 for response B; ``round`` counts from 1."""

    side: int
    round: int
    text: str


@dataclass(frozen=True)
class DebateItem:
    """A question, its two candidate answers (A, B) and the principle the judge applies."""

    question: str
    answers: tuple[str, str]
    principle: str


def one_line(text: str) -> str:
    """A turn or an answer on one line, so the transcript's lines stay the speakers' (a debater cannot forge a
    ``Debater B:`` line of its own)."""
    return " ".join(text.split())


def transcript(question: str, answers: Sequence[str], turns: Sequence[Turn], principle: str | None = None) -> str:
    """The debate so far as prompt text: the principle (when given), the request, both answers, then every turn
    in order as ``Debater X (round r): ...``. Pure; the judge and each debater read exactly this."""
    if len(answers) != 2:
        raise ValueError("a debate has exactly two answers")
    lines = [f"Principle: {principle}"] if principle else []
    lines += [f"Request: {one_line(question)}", f"Response A: {one_line(answers[0])}",
              f"Response B: {one_line(answers[1])}"]
    lines += [f"Debater {SIDES[t.side]} (round {t.round}): {one_line(t.text)}" for t in turns]
    return "\n".join(lines)


def debater_prompt(item: DebateItem, turns: Sequence[Turn], side: int) -> list[Message]:
    """What the debater of ``side`` is asked: the transcript so far and the answer it must defend."""
    me, other = SIDES[side], SIDES[1 - side]
    ask_text = (f"You are Debater {me}. In one or two sentences, argue that Response {me} follows the principle "
                f"better than Response {other}.")
    return [{"role": "user", "content": transcript(item.question, item.answers, turns, item.principle) + "\n" + ask_text}]


def judge_prompt(item: DebateItem, turns: Sequence[Turn]) -> list[Message]:
    """What the judge is asked: the whole transcript, then the lab's comparison question (answered A or B)."""
    return [{"role": "user", "content": transcript(item.question, item.answers, turns, item.principle) + "\n" + QUESTION}]


def run_debates(items: Sequence[DebateItem], debaters: tuple[LM, LM], rounds: int, sampling: Sampling
                ) -> list[list[Turn]]:
    """Every item's debate, ``rounds`` rounds of A then B; one batched generation per turn over all items (each
    turn reads the turns before it, so turns cannot be batched across positions)."""
    turns: list[list[Turn]] = [[] for _ in items]
    for r in range(1, rounds + 1):
        for side in (0, 1):
            if not items:
                break
            outs = debaters[side].generate([debater_prompt(it, ts, side) for it, ts in zip(items, turns)], sampling)
            for ts, out in zip(turns, outs):
                ts.append(Turn(side, r, out[0].text.strip()))
    return turns


def resolve_mode(lm: LM, mode: JudgeMode) -> Literal["logprob", "generate"]:
    """``auto``: a logprob verdict over A/B where the provider reads a next-token distribution
    (``choice_logprobs``), else a generated verdict, parsed."""
    if mode != "auto":
        return mode
    return "logprob" if callable(getattr(lm, "choice_logprobs", None)) else "generate"


def judge_debates(items: Sequence[DebateItem], turns: Sequence[Sequence[Turn]], judge: LM, mode: JudgeMode = "auto",
                  samples: int = 3, seed: int = 0) -> list[Verdict]:
    """The judge's verdict on every transcript: ``value`` = P(response A is the better one), None when no
    generated verdict could be read. ``turns`` empty for an item = the judge sees only the two answers."""
    prompts = [judge_prompt(it, ts) for it, ts in zip(items, turns)]
    return ask(judge, prompts, FORMATS["compare"], resolve_mode(judge, mode), samples=samples, temperature=1.0,
               max_new_tokens=8, seed=seed)


class Debate:
    """Debate verdicts over pairs of the policy's samples -> DPO pairs (see the module docstring)."""

    name = "debate"

    def __init__(
        self,
        debater_a: str = "lab:teacher",
        debater_b: str | None = None,
        judge: str = "policy",
        rounds: int = 2,
        judge_mode: JudgeMode = "auto",
        judge_samples: int = 3,
        pairs_per_prompt: int = 1,
        tie_margin: float = 0.1,
        principles: Literal["axis", "any"] = "axis",
        constitution: str | None = None,
        temperature: float = 0.7,
        max_new_tokens: int = 32,
        seed: int = 0,
        load_lm: Callable | None = None,
    ):
        """``debater_a``: the model arguing for the answer shown as A (``policy`` or a URI); ``debater_b``: the one
        arguing for B (default: ``debater_a``); ``judge``: the (weaker) model reading the transcript, ``policy`` or a
        URI; ``rounds``: debate rounds, one turn per debater each (0: the judge sees the two answers only);
        ``judge_mode``: ``logprob`` (P(A) from the A/B answer tokens), ``generate`` (sampled verdicts, parsed) or
        ``auto`` (logprob where the provider reads a next-token distribution, else generate); ``judge_samples``:
        verdicts sampled per transcript in generate mode; ``pairs_per_prompt``: pairs of distinct samples debated
        per prompt; ``tie_margin``: a verdict within this of 1/2 is a tie and gives no pair; ``principles``: the
        judge's principle drawn among the prompt's axis (``axis``) or all (``any``); ``constitution``: a
        constitution YAML for the principles (default: the project's); ``temperature``: the debaters' sampling
        temperature; ``max_new_tokens``: the length of one debate turn; ``seed``: seeds the turns, the pairs and
        which sample argues as A."""
        check_choice("judge_mode", judge_mode, ("auto", "logprob", "generate"))
        check_choice("principles", principles, ("axis", "any"))
        if rounds < 0 or pairs_per_prompt < 1 or max_new_tokens < 1 or judge_samples < 1:
            raise ValueError("rounds must be >= 0; pairs_per_prompt, max_new_tokens and judge_samples >= 1")
        if not 0.0 <= tie_margin < 0.5:
            raise ValueError("tie_margin must be in [0, 0.5)")
        self.debaters = (ModelRef(debater_a, load_lm, "debater_a"), ModelRef(debater_b or debater_a, load_lm, "debater_b"))
        self.judge = ModelRef(judge, load_lm, "judge")
        self.constitution = constitution_from(constitution)
        self.rounds, self.judge_mode, self.judge_samples = rounds, judge_mode, judge_samples
        self.pairs_per_prompt, self.tie_margin, self.principles = pairs_per_prompt, tie_margin, principles
        self.sampling = Sampling(n=1, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
        self.seed = seed

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        by_id = {p.id: p for p in prompts}
        jobs: list[tuple[Prompt, Sample, Sample, bool, str]] = []  # (prompt, a, b, b argues as A, principle id)
        items: list[DebateItem] = []
        for pid, group in known_samples(prompts, samples).items():
            for a, b in choose_pairs(group, self.pairs_per_prompt, self.seed, pid):
                pr = principle_for(self.constitution, by_id[pid], self.seed, self.principles, a.index, b.index)
                swapped = item_rng(self.seed, "debate-side", pid, a.index, b.index).random() < 0.5
                first, second = (b, a) if swapped else (a, b)
                jobs.append((by_id[pid], a, b, swapped, pr.id))
                items.append(DebateItem(request_of(by_id[pid]), (first.text, second.text), pr.text))
        debaters = (self.debaters[0].get(policy), self.debaters[1].get(policy))
        judge = self.judge.get(policy)
        turns = run_debates(items, debaters, self.rounds, self.sampling)
        verdicts = judge_debates(items, turns, judge, self.judge_mode, self.judge_samples, self.seed)
        labels: list[Label] = []
        prefs: list[Preference] = []
        outcomes: Counter = Counter()
        first_wins = 0
        for (prompt, a, b, swapped, pr_id), ts, v in zip(jobs, turns, verdicts):
            p_a = None if v.value is None else (1.0 - v.value if swapped else v.value)  # P(sample a beats b)
            outcome = None if p_a is None else pair_outcome(p_a, self.tie_margin)
            outcomes[outcome or "unparseable"] += 1
            first_wins += v.value is not None and v.value > 0.5
            labels.append(Label(
                prompt_id=prompt.id, sample_index=a.index, signal=self.name,
                verdict={"a": "win", "b": "loss", "tie": "tie", None: "unparseable"}[outcome],
                score=p_a if p_a is not None else 0.0, kind="pairwise" if p_a is not None else "none",
                detail={"versus": b.index, "principle": pr_id, "judge": judge.uri, "argues_a": b.index if swapped
                        else a.index, "turns": [{"side": SIDES[t.side], "round": t.round, "text": t.text} for t in ts],
                        **v.detail()}))
            if outcome in ("a", "b"):
                win, lose = (a, b) if outcome == "a" else (b, a)
                prefs.append(Preference(prompt_id=prompt.id, prompt=prompt.messages, chosen=win.text,
                                        rejected=lose.text, signal=self.name,
                                        margin=abs(2.0 * p_a - 1.0)))  # type: ignore[operator]
        judged = sum(v.value is not None for v in verdicts)
        all_turns = [t for ts in turns for t in ts]
        stats = {"judge": judge.uri, "debaters": [d.uri for d in debaters], "rounds": self.rounds,
                 "judge_mode": resolve_mode(judge, self.judge_mode), "pairs_judged": len(jobs), "pairs": len(prefs),
                 "ties": outcomes["tie"], "unparseable": outcomes["unparseable"],
                 # how often the response shown first wins: far from 1/2 means the judge reads position, not argument
                 "first_position_wins": round(first_wins / judged, 4) if judged else None,
                 "mean_turn_words": (round(sum(len(t.text.split()) for t in all_turns) / len(all_turns), 2)
                                     if all_turns else 0.0)}
        return SignalResult(labels=labels, preferences=prefs, stats=stats)
