"""A simulated society (Stable Alignment, Liu et al. 2024, "Training Socially Aligned Language Models on Simulated
Social Interactions", sec. 3.1, the Sandbox): agents on a grid rate and criticise the policy's answers, the policy
revises, and the rated interactions become training data.

The world: each agent (a model URI: ``policy``, ``lab:``, ``hf:``, ``openai:`` ..., a persona and sampling settings)
sits on its own cell of a ``grid`` x ``grid`` board, the cells drawn from the seed. For each question the central
agent, the policy, stands on a free cell drawn from (seed, question); its neighbours are the agents within
``radius`` (Chebyshev distance), nearest first (name breaks ties), at most ``raters``; when none is that close, the
nearest ones are (so every question has a rater).

An interaction per question, in four turns: the policy's draft (the round's sample) is rated by each neighbour
(P(Yes) from the answer-token log-probs, or a 1-7 rating, read or generated) and each writes feedback; the policy
revises given the feedback; the neighbours rate the revision. Each turn is one batched model call per (model URI,
sampling) group of the agents who speak in it, not one per agent. A persona is the agent's values: the principle it
rates and criticises by (empty: the constitution's principle for the question's axis).

The records (``Interaction``, saved as JSONL parts in the signal's stage, so a killed run resumes from its last
chunk) become the paper's three kinds of data (``to_rows``): imitation (the best-rated answer as the SFT target, and
(best, lower-rated) pairs with their rating gap as margin, for the ``stable_alignment`` phase), realignment (draft +
feedback -> revision, when the revision is rated higher: a pair against the draft, and an SFT example) and
self-critique (answer -> a neighbour's feedback, SFT).
"""

from __future__ import annotations

import random
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from autoalign.errors import UserError
from autoalign.models.base import LM, Message, Sampling
from autoalign.records import Label, Preference, Prompt, Sample, SFTExample
from autoalign.signals.base import SignalResult, StageContext
from autoalign.signals.model_feedback.common import POLICY, item_rng, known_samples, principle_for, sft_example
from autoalign.signals.model_feedback.constitution import Constitution, load_constitution
from autoalign.signals.model_feedback.judges import FORMATS, Verdict, VerdictFormat, ask
from autoalign.store import Stage, hash_json, read_jsonl

Cell = tuple[int, int]
Kind = Literal["imitation", "realignment", "self_critique"]
KINDS: tuple[Kind, ...] = ("imitation", "realignment", "self_critique")
EPS = 1e-9  # rating gaps below this are float noise (a mean of ratings), not a preference

LIKERT7_TEMPLATE = """Principle: {principle}
Request: {request}
Response: {response}
How well does the response follow the principle, from 1 (not at all) to 7 (fully)? Answer with one number."""
_DIGIT = re.compile(r"\b([1-7])\b")


def parse_likert7(text: str) -> float | None:
    """A 1-7 rating r read as (r - 1) / 6 in [0, 1]; the first digit 1..7 standing alone; None when absent."""
    m = _DIGIT.search(text)
    return None if m is None else (int(m.group(1)) - 1) / 6.0


LIKERT7 = VerdictFormat("likert7", {str(k): (k - 1) / 6.0 for k in range(1, 8)}, parse_likert7, "7")


# ---- configuration -----------------------------------------------------------------------------------------------
class AgentSpec(BaseModel):
    """One member of the society."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="The agent's name (unique), as it appears in the records.")
    model: str = Field(min_length=1, description="Model URI: policy, lab:..., hf:..., openai:... ; agents naming "
                                                 "one model share it (one loaded copy, one batched call per turn).")
    persona: str = Field("", description="The values the agent holds: the principle it rates and criticises by "
                                         "(empty: the constitution's principle for the question's axis).")
    temperature: float = Field(0.7, ge=0.0, description="Sampling temperature of its feedback (0 = greedy).")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling of its feedback.")
    max_new_tokens: int = Field(48, ge=1, description="Length bound of its feedback (and of a generated rating).")

    def sampling(self, seed: int) -> Sampling:
        return Sampling(n=1, temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.max_new_tokens,
                        seed=seed)


class SocietyConfig(BaseModel):
    """The world of the simulation: who lives where, how they rate, how the policy revises."""

    model_config = ConfigDict(extra="forbid")

    agents: list[AgentSpec] = Field(min_length=1, description="The society's members (the policy is the central "
                                                              "agent and is not listed).")
    grid: int = Field(4, ge=1, le=64, description="Side of the square grid the agents live on.")
    radius: int = Field(1, ge=1, description="Neighbourhood radius (Chebyshev distance) of an interaction.")
    raters: int = Field(3, ge=1, description="At most this many neighbours rate each answer, nearest first.")
    rating: Literal["yes_no", "likert7"] = Field(
        "yes_no", description="yes_no: P(the answer follows the principle); likert7: a 1-7 rating read as (r-1)/6.")
    rating_mode: Literal["logprob", "generate"] = Field(
        "logprob", description="logprob: the rating's expected value under the answer tokens' probabilities (one "
                               "scoring call, no sampling); generate: a sampled rating, parsed.")
    feedback: bool = Field(True, description="Neighbours write feedback and the policy revises with it; false: the "
                                             "policy revises with the principle alone (the lab's revision format).")
    revise_temperature: float = Field(0.0, ge=0.0, description="The policy's sampling temperature when it revises.")
    revise_max_new_tokens: int = Field(64, ge=1, description="Length bound of a revision.")
    chunk: int = Field(32, ge=1, description="Questions per saved part (a killed run resumes after the last one).")
    constitution: str | None = Field(None, description="Constitution file whose principles and templates the "
                                                       "society uses (default: the 3H constitution).")

    @field_validator("agents")
    @classmethod
    def _distinct(cls, agents: list[AgentSpec]) -> list[AgentSpec]:
        names = [a.name for a in agents]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise ValueError(f"agent name {dup!r} is used twice")
        if "policy" in names:
            raise ValueError("agent name 'policy' is the central agent's; choose another")
        return agents

    @field_validator("grid")
    @classmethod
    def _fits(cls, grid: int, info: ValidationInfo) -> int:
        agents = info.data.get("agents") or []
        if len(agents) >= grid * grid:
            raise ValueError(f"{len(agents)} agents do not fit a {grid}x{grid} grid with a free cell for the policy")
        return grid


def parse_society(raw: dict | SocietyConfig, where: str = "society") -> SocietyConfig:
    """The config from its plain form, or one line naming the first bad field (``society.agents.0.model: ...``)."""
    if isinstance(raw, SocietyConfig):
        return raw
    try:
        return SocietyConfig.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise ValueError(f"{where}{'.' + loc if loc else ''}: {first['msg']}") from None


def load_society_file(path: str | Path) -> SocietyConfig:
    """A society YAML file (the same keys as the ``society`` section); errors are one UserError line naming it."""
    from autoalign.yaml_input import read_yaml_file

    p = Path(path)
    data = read_yaml_file(p, f"society file {p}")
    if not isinstance(data, dict):
        raise UserError(f"society file {p}: expected a mapping with an 'agents' list")
    try:
        return parse_society(data, where=f"society file {p}")
    except ValueError as exc:
        raise UserError(str(exc)) from None


# ---- the world -------------------------------------------------------------------------------------------------
def chebyshev(a: Cell, b: Cell) -> int:
    return max(abs(a[0] - b[0]), abs(a[1] - b[1]))


@dataclass(frozen=True)
class World:
    """Agents on the grid (``place``) and who is whose neighbour: pure functions of the config and the seed."""

    side: int
    radius: int
    positions: dict[str, Cell]

    @classmethod
    def place(cls, cfg: SocietyConfig, seed: int) -> World:
        """Each agent on its own cell, drawn without replacement from the seed (in the config's agent order)."""
        cells = [(x, y) for x in range(cfg.grid) for y in range(cfg.grid)]
        drawn = random.Random(f"{seed}\x00society-grid").sample(cells, len(cfg.agents))
        return cls(cfg.grid, cfg.radius, {a.name: c for a, c in zip(cfg.agents, drawn)})

    def centre(self, seed: int, key: str) -> Cell:
        """The policy's cell for one question: a free cell drawn from (seed, question key)."""
        taken = set(self.positions.values())
        free = [(x, y) for x in range(self.side) for y in range(self.side) if (x, y) not in taken]
        return item_rng(seed, "society-centre", key).choice(free)

    def neighbours(self, cell: Cell, k: int) -> list[str]:
        """The agents within ``radius`` of ``cell``, nearest first (name breaks ties), at most ``k``; when none is
        that close, the nearest ones (all at the smallest distance, by name), at most ``k``."""
        by_distance = sorted((chebyshev(cell, c), name) for name, c in self.positions.items())
        near = [(d, n) for d, n in by_distance if d <= self.radius]
        if not near:
            closest = by_distance[0][0]
            near = [(d, n) for d, n in by_distance if d == closest]
        return [n for _, n in near[:k]]


# ---- the records -------------------------------------------------------------------------------------------------
class Interaction(BaseModel):
    """One question through the society: the draft, its ratings and feedback, the revision and its ratings.
    Ratings are on the unit scale (None: unreadable). The prompts are kept so the data conversion is pure."""

    model_config = ConfigDict(extra="forbid")

    prompt_id: str
    sample_index: int
    question: str
    principle: str
    cell: tuple[int, int]
    neighbours: list[str]
    draft: str
    draft_ratings: dict[str, float | None] = Field(default_factory=dict)
    feedback: dict[str, str] = Field(default_factory=dict)
    feedback_prompts: dict[str, str] = Field(default_factory=dict)
    revise_prompt: str = ""
    revision: str | None = None
    revision_finish: str = "stop"
    revision_ratings: dict[str, float | None] = Field(default_factory=dict)

    @staticmethod
    def _mean(ratings: dict[str, float | None]) -> float | None:
        known = [v for v in ratings.values() if v is not None]
        return statistics.fmean(known) if known else None

    @property
    def draft_score(self) -> float | None:
        """The society's rating of the draft: the mean of its neighbours' readable ratings."""
        return self._mean(self.draft_ratings)

    @property
    def revision_score(self) -> float | None:
        return self._mean(self.revision_ratings) if self.revision_usable else None

    @property
    def revision_usable(self) -> bool:
        """A revision is a candidate when it is non-empty, ended on its own and differs from the draft."""
        return (bool(self.revision and self.revision.strip()) and self.revision_finish != "length"
                and (self.revision or "").strip() != self.draft.strip())


# ---- the turns: one batched call per (model, sampling) group -----------------------------------------------------
@dataclass
class Speaker:
    """An agent as the simulation runs it: its spec and its loaded model."""

    spec: AgentSpec
    lm: LM


@dataclass
class TurnLog:
    """Model calls and agent-turns per turn (the benchmark's and the stats' counts)."""

    calls: Counter = field(default_factory=Counter)
    agent_turns: Counter = field(default_factory=Counter)


def _groups(requests: Sequence[tuple[Speaker, object]], key: Callable[[Speaker], object]) -> dict[object, list[int]]:
    out: dict[object, list[int]] = {}
    for i, (sp, _) in enumerate(requests):
        out.setdefault(key(sp), []).append(i)
    return out


def generate_turn(requests: Sequence[tuple[Speaker, list[Message]]], seed: int, turn: str, log: TurnLog,
                  batched: bool = True) -> list[tuple[str, str]]:
    """(text, finish_reason) for each (speaker, prompt), in order: one ``generate`` call per group of speakers that
    share a model URI and sampling settings (``batched=False``: one call per request, the benchmark's baseline)."""
    out: list[tuple[str, str]] = [("", "stop")] * len(requests)
    groups = _groups(requests, lambda sp: (sp.spec.model, sp.spec.sampling(seed).key()))
    for idx in groups.values():
        speaker = requests[idx[0]][0]
        sampling = speaker.spec.sampling(seed)
        batches = [idx] if batched else [[i] for i in idx]
        for b in batches:
            comps = speaker.lm.generate([requests[i][1] for i in b], sampling)
            log.calls[turn] += 1
            for i, c in zip(b, comps):
                out[i] = (c[0].text.strip(), c[0].finish_reason)
    log.agent_turns[turn] += len(requests)
    return out


def rate_turn(requests: Sequence[tuple[Speaker, list[Message]]], fmt: VerdictFormat,
              mode: Literal["logprob", "generate"], seed: int,
              turn: str, log: TurnLog, batched: bool = True) -> list[float | None]:
    """Each speaker's rating of its prompt, on the unit scale: one scoring (``logprob``) or sampling (``generate``)
    call per group of speakers sharing a model (and, when sampling, sampling settings)."""
    out: list[float | None] = [None] * len(requests)
    if mode == "logprob":
        groups = _groups(requests, lambda sp: sp.spec.model)
    else:
        groups = _groups(requests, lambda sp: (sp.spec.model, sp.spec.temperature, sp.spec.max_new_tokens))
    for idx in groups.values():
        sp = requests[idx[0]][0]
        for b in ([idx] if batched else [[i] for i in idx]):
            verdicts: list[Verdict] = ask(sp.lm, [requests[i][1] for i in b], fmt, mode,
                                          samples=1, temperature=sp.spec.temperature,
                                          max_new_tokens=sp.spec.max_new_tokens, seed=seed)
            log.calls[turn] += 1
            for i, v in zip(b, verdicts):
                out[i] = v.value
    log.agent_turns[turn] += len(requests)
    return out


def _user(text: str) -> list[Message]:
    return [{"role": "user", "content": text}]


class Simulation:
    """The society of one config and seed, with its models loaded: ``interact`` runs questions through it."""

    def __init__(self, cfg: SocietyConfig, policy: LM, load_lm: Callable[[str], LM] | None, seed: int,
                 constitution: Constitution | None = None):
        self.cfg, self.seed = cfg, seed
        self.constitution = constitution or load_constitution(cfg.constitution)
        self.world = World.place(cfg, seed)
        loaded: dict[str, LM] = {}

        def lm_for(uri: str) -> LM:
            if uri in POLICY:
                return policy
            if uri not in loaded:
                if load_lm is None:
                    raise UserError(f"society agent model {uri!r}: no model loader given (build the signal "
                                    f"through the catalog)")
                loaded[uri] = load_lm(uri)
            return loaded[uri]

        self.speakers = {a.name: Speaker(a, lm_for(a.model)) for a in cfg.agents}
        self.policy = Speaker(AgentSpec(name="policy", model="policy", temperature=cfg.revise_temperature,
                                        max_new_tokens=cfg.revise_max_new_tokens), policy)
        self.fmt = FORMATS["yes_no"] if cfg.rating == "yes_no" else LIKERT7
        self.log = TurnLog()

    def _rate_prompt(self, principle: str, request: str, response: str) -> list[Message]:
        template = self.constitution.templates.judge if self.cfg.rating == "yes_no" else LIKERT7_TEMPLATE
        return _user(template.format(principle=principle, request=request, response=response))

    def _principle(self, name: str, axis_principle: str) -> str:
        return self.speakers[name].spec.persona.strip() or axis_principle

    def start(self, prompt: Prompt, sample: Sample) -> Interaction:
        cell = self.world.centre(self.seed, f"{prompt.id}\x00{sample.index}")
        principle = principle_for(self.constitution, prompt, self.seed, "axis", sample.index)
        return Interaction(prompt_id=prompt.id, sample_index=sample.index, question=prompt.text,
                           principle=principle.text, cell=cell,
                           neighbours=self.world.neighbours(cell, self.cfg.raters), draft=sample.text)

    def interact(self, items: Sequence[tuple[Prompt, Sample]], batched: bool = True) -> list[Interaction]:
        """The four turns for every (question, draft), each turn batched across all questions."""
        acts = [self.start(p, s) for p, s in items]
        t = self.constitution.templates
        pairs = [(x, n) for x in acts for n in x.neighbours]
        # turn 1: every neighbour rates the draft
        ratings = rate_turn([(self.speakers[n], self._rate_prompt(self._principle(n, x.principle), x.question,
                                                                  x.draft)) for x, n in pairs],
                            self.fmt, self.cfg.rating_mode, self.seed, "rate_draft", self.log, batched)
        for (x, n), r in zip(pairs, ratings):
            x.draft_ratings[n] = r
        # turn 2: every neighbour writes feedback
        if self.cfg.feedback:
            asks = [t.critique.format(principle=self._principle(n, x.principle), request=x.question,
                                      response=x.draft) for x, n in pairs]
            said = generate_turn([(self.speakers[n], _user(a)) for (x, n), a in zip(pairs, asks)], self.seed,
                                 "feedback", self.log, batched)
            for (x, n), a, (text, _) in zip(pairs, asks, said):
                x.feedback[n], x.feedback_prompts[n] = text, a
        # turn 3: the central agent revises given its neighbours' feedback
        for x in acts:
            notes = "\n".join(f"- {x.feedback[n]}" for n in x.neighbours if x.feedback.get(n))
            fields = dict(principle=x.principle, request=x.question, response=x.draft)
            x.revise_prompt = (t.revise_with_critique.format(critique=notes, **fields) if self.cfg.feedback
                               else t.revise.format(**fields))
        revised = generate_turn([(self.policy, _user(x.revise_prompt)) for x in acts], self.seed, "revise",
                                self.log, batched)
        for x, (text, finish) in zip(acts, revised):
            x.revision, x.revision_finish = text, finish
        # turn 4: the neighbours rate the revision
        todo = [(x, n) for x in acts if x.revision_usable for n in x.neighbours]
        ratings = rate_turn([(self.speakers[n], self._rate_prompt(self._principle(n, x.principle), x.question,
                                                                  x.revision or "")) for x, n in todo],
                            self.fmt, self.cfg.rating_mode, self.seed, "rate_revision", self.log, batched)
        for (x, n), r in zip(todo, ratings):
            x.revision_ratings[n] = r
        return acts


# ---- records -> the paper's three kinds of data (pure) -----------------------------------------------------------
@dataclass
class Rows:
    sft: list[SFTExample] = field(default_factory=list)
    preferences: list[Preference] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)


def to_rows(interactions: Sequence[Interaction], prompts: Sequence[Prompt], signal: str,
            kinds: Sequence[Kind] = KINDS, min_gap: float = 0.0) -> Rows:
    """Imitation, realignment and self-critique data from the records (see the module docstring). A candidate (a
    draft, or a usable revision) with no readable rating takes no part; "lower-rated" means by more than
    ``min_gap`` (plus ``EPS``); pairs of one prompt are (best, each distinct lower-rated candidate)."""
    by_id = {p.id: p for p in prompts}
    rows = Rows()
    groups: dict[str, list[Interaction]] = {}
    for x in interactions:
        if x.prompt_id in by_id:
            groups.setdefault(x.prompt_id, []).append(x)
    for pid, acts in groups.items():
        prompt = by_id[pid]
        cands: list[tuple[str, float]] = []
        for x in acts:
            for text, score in ((x.draft, x.draft_score), (x.revision or "", x.revision_score)):
                if score is not None and text.strip() and text.strip() not in {c for c, _ in cands}:
                    cands.append((text.strip(), score))
        best = max(cands, key=lambda c: c[1]) if cands else None  # the first of equal ratings
        if best is not None and "imitation" in kinds:
            rows.sft.append(sft_example(prompt, best[0], signal))
            rows.counts["imitation_sft"] += 1
            for text, score in cands:
                if best[1] - score > min_gap + EPS:
                    rows.preferences.append(Preference(prompt_id=pid, prompt=prompt.messages, chosen=best[0],
                                                       rejected=text, signal=signal, margin=best[1] - score))
                    rows.counts["imitation_pairs"] += 1
        for x in acts:
            d, r = x.draft_score, x.revision_score
            improved = d is not None and r is not None and r - d > min_gap + EPS
            if improved and "realignment" in kinds:
                ask = _user(x.revise_prompt)
                rows.preferences.append(Preference(prompt_id=pid, prompt=ask, chosen=(x.revision or "").strip(),
                                                   rejected=x.draft, signal=signal, margin=r - d))  # type: ignore[operator]
                rows.sft.append(SFTExample(prompt_id=pid, signal=signal, messages=[
                    *ask, {"role": "assistant", "content": (x.revision or "").strip()}]))
                rows.counts["realignment"] += 1
            if "self_critique" in kinds:
                for n in x.neighbours:
                    text = x.feedback.get(n, "").strip()
                    if text and x.feedback_prompts.get(n):
                        rows.sft.append(SFTExample(prompt_id=pid, signal=signal, messages=[
                            *_user(x.feedback_prompts[n]), {"role": "assistant", "content": text}]))
                        rows.counts["self_critique"] += 1
            target = best is not None and best[0] in {x.draft.strip(), (x.revision or "").strip()}
            kept_revision = target and best is not None and best[0] == (x.revision or "").strip() and improved
            rows.labels.append(Label(
                prompt_id=pid, sample_index=x.sample_index, signal=signal,
                verdict="revised" if kept_revision else "rated" if d is not None else "unrated",
                score=float(d) if d is not None else 0.0, kind="unit" if d is not None else "none",
                selected=bool(target),
                detail={"draft_score": d, "revision_score": r, "neighbours": x.neighbours,
                        "draft_ratings": x.draft_ratings, "revision_ratings": x.revision_ratings,
                        **({"revision": (x.revision or "").strip()} if kept_revision else
                           {"rejected_revision": x.revision})}))
    return rows


def summary(interactions: Sequence[Interaction], log: TurnLog) -> dict:
    """The stage's statistics: ratings before and after revision, how revisions fared, calls per turn."""
    drafts = [x.draft_score for x in interactions if x.draft_score is not None]
    paired = [(x.draft_score, x.revision_score) for x in interactions
              if x.draft_score is not None and x.revision_score is not None]
    def mean(v: Sequence[float]) -> float | None:
        return round(statistics.fmean(v), 4) if v else None
    return {
        "interactions": len(interactions),
        "raters_per_question": mean([len(x.neighbours) for x in interactions]),
        "draft_rating": mean(drafts),
        "paired_draft_rating": mean([d for d, _ in paired]),
        "paired_revision_rating": mean([r for _, r in paired]),
        "revisions_rated": len(paired),
        "revision_better": sum(r > d for d, r in paired),
        "revision_worse": sum(r < d for d, r in paired),
        "revision_unusable": sum(not x.revision_usable for x in interactions),
        "unreadable_ratings": sum(v is None for x in interactions for v in
                                  (*x.draft_ratings.values(), *x.revision_ratings.values())),
        "model_calls": dict(log.calls),
        "agent_turns": dict(log.agent_turns),
    }


# ---- the signal --------------------------------------------------------------------------------------------------
class Society:
    """Stable Alignment's simulated society as a signal. ``society``: the world (a mapping with the keys of
    ``SocietyConfig``) or ``society_file``: a YAML file of it; ``drafts``: samples per prompt that go through the
    society; ``data``: which kinds of training data to emit; ``min_gap``: the rating gap a pair needs."""

    name = "society"

    def __init__(
        self,
        society: SocietyConfig | None = None,
        society_file: str | None = None,
        drafts: int = 1,
        data: list[Kind] = list(KINDS),  # noqa: B006 - read only; pydantic copies what a recipe gives
        min_gap: float = 0.0,
        seed: int = 0,
        load_lm: Callable | None = None,
    ):
        if (society is None) == (society_file is None):
            raise ValueError("give exactly one of society (the section) and society_file (a YAML file)")
        self.cfg = load_society_file(society_file) if society_file is not None else parse_society(society or {})
        if drafts < 1 or min_gap < 0:
            raise ValueError("drafts must be >= 1 and min_gap >= 0")
        self.drafts, self.kinds, self.min_gap, self.seed, self.load_lm = drafts, list(data), min_gap, seed, load_lm
        self.constitution = load_constitution(self.cfg.constitution)  # a bad file fails before anything loads

    def items(self, prompts: Sequence[Prompt], samples: Sequence[Sample]) -> list[tuple[Prompt, Sample]]:
        by_id = {p.id: p for p in prompts}
        return [(by_id[pid], s) for pid, group in known_samples(prompts, samples).items()
                for s in group[: self.drafts] if s.text.strip()]

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        seed = ctx.seed if ctx is not None else self.seed
        sim = Simulation(self.cfg, policy, self.load_lm, seed, self.constitution)
        items = self.items(prompts, samples)
        stage = None
        if ctx is not None:  # saved in parts: a killed run resumes after its last complete chunk
            stage = Stage(ctx.dir, "society")
            stage.reset_if_stale(hash_json([self.cfg.model_dump(), seed, [(p.id, s.index, s.text) for p, s in items],
                                            getattr(policy, "uri", "")]))
        acts: list[Interaction] = []
        resumed = 0
        for i, start in enumerate(range(0, len(items), self.cfg.chunk)):
            if stage is not None and stage.part_done("interactions", i):
                acts.extend(read_jsonl(stage.part_path("interactions", i), Interaction))
                resumed += 1
                continue
            done = sim.interact(items[start : start + self.cfg.chunk])
            if stage is not None:
                stage.write_part("interactions", i, done)
            acts.extend(done)
        rows = to_rows(acts, prompts, self.name, self.kinds, self.min_gap)
        stats = {**summary(acts, sim.log), **dict(rows.counts), "resumed_chunks": resumed,
                 "sft": len(rows.sft), "preferences": len(rows.preferences),
                 "positions": {n: list(c) for n, c in sim.world.positions.items()}}
        return SignalResult(labels=rows.labels, sft=rows.sft, preferences=rows.preferences, stats=stats)
