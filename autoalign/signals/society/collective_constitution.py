"""Collective Constitutional AI (Huang et al. 2024): a constitution drafted by a population instead of a lab.

A simulated population (a YAML file: groups of agents, each agent an LM prompted with a short value statement, its
persona) runs a Polis-style conversation:

1. **propose**: every agent writes ``proposals_per_agent`` principles; together with the file's seed statements
   (Polis conversations start from moderator-written seeds, as the CCAI conversation did) they are de-duplicated
   by ROUGE-L (rouge-score); generated ones that are refusals, abstentions, under ``min_words`` or not about the
   assistant's behaviour are dropped (``clean_proposal``);
2. **vote**: every agent votes agree / disagree / pass on a seeded sample of the others' statements. A vote is the
   agent's P(Yes) under the ``vote`` template (logprob of Yes vs No where the LM scores choices, else a parsed
   generation) against the agent's own baseline (its mean P(Yes) over the statements it saw: a small model says
   "No" to everything by a fixed margin, and a person's vote is a preference among statements too); within
   ``pass_margin`` of it is a pass;
3. **aggregate** (Polis, as CCAI did): voters are clustered into opinion groups by their vote vectors (missing
   votes imputed with the statement's mean, PCA to 2 components, k-means; scikit-learn, seeded), and statements
   are ranked by *group-informed consensus*: the product over opinion groups of the group's (smoothed) agree rate.
   A statement counts only when every group agrees with it, so a statement one large group loves and another
   rejects ranks below one all groups accept (bridging), where a plain majority would rank it first;
4. **constitution**: the ``top_k`` statements (the best of each 3H axis first, then by rank) become a constitution
   file in the format of ``model_feedback/constitution.yaml``. Each principle's axis is the seed statement's own
   axis or, for a generated one, a keyword rule (``axis_of``): the 3H axis whose keywords the text names most
   (ties: harmless, honest, helpful), helpful when it names none.

The signal (``CollectiveConstitution``) drafts the constitution once (round 1, saved as the ``constitution``
artifact of its stage; later rounds and a resumed run read it back) and then runs Constitutional AI's supervised
stage with it (``critique_revise``): the revisions train the policy.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autoalign.answers import is_abstention, is_refusal
from autoalign.errors import UserError
from autoalign.models.base import LM, Message, Sampling
from autoalign.records import Axis, Prompt, Sample
from autoalign.signals.base import Artifact, SignalResult, StageContext
from autoalign.signals.model_feedback.common import ModelRef, check_choice, item_rng
from autoalign.signals.model_feedback.constitution import Constitution, Principle, default_constitution
from autoalign.signals.model_feedback.judges import FORMATS, ask

if TYPE_CHECKING:
    from numpy.typing import NDArray

DEFAULT_POPULATION = "population.yaml"
AXES: tuple[Axis, ...] = ("harmless", "honest", "helpful")  # also the keyword rule's tie order
KEYWORDS: dict[Axis, tuple[str, ...]] = {
    "harmless": ("harm", "danger", "refuse", "safe", "weapon", "hurt", "illegal", "violen", "fair", "group",
                 "bias", "respect", "kind", "abuse", "attack"),
    "honest": ("honest", "truth", "true", "know", "lie", "lying", "fact", "invent", "made up", "make up",
               "admit", "uncertain", "mislead", "pretend", "can do", "abilit"),
    "helpful": ("help", "answer", "correct", "useful", "clear", "ask", "question", "explain", "complete",
                "accura", "request"),
}
PROPOSE = '{persona}\nWrite one short principle that an AI assistant should follow. Begin with "The response".'
VOTE = ("Principle: {persona}\nRequest: Should an AI assistant follow this rule?\nResponse: {statement}\n"
        "Does the response follow the principle? Answer Yes or No.")


# ---- the population file ---------------------------------------------------------------------------------------
class Group(BaseModel):
    """A group of agents who share a stance; one agent per persona (a short value statement in the first
    person). ``model``: the agents' LM (``policy`` or a URI), default the population's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    personas: list[str] = Field(min_length=1)
    model: str | None = None


class SeedStatement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1)
    axis: Axis | None = None


class Population(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    model: str = "policy"
    groups: list[Group] = Field(min_length=2)
    seed_statements: list[SeedStatement] = Field(default_factory=list)
    propose_template: str = PROPOSE
    vote_template: str = VOTE


@dataclass(frozen=True)
class Agent:
    id: str
    group: str
    persona: str
    model: str


def agents_of(pop: Population) -> list[Agent]:
    return [Agent(f"{g.name}/{i}", g.name, persona, g.model or pop.model)
            for g in pop.groups for i, persona in enumerate(g.personas)]


def load_population(path: str | Path | None = None) -> Population:
    """The population at ``path`` (YAML), or the shipped default; a bad file is one UserError line naming it."""
    if path is None:
        text = resources.files("autoalign.signals.society").joinpath(DEFAULT_POPULATION).read_text("utf-8")
        return _parse_population(yaml.safe_load(text), "<default population>")
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"population {path}: file not found")
    from autoalign.yaml_input import read_yaml_file

    data = read_yaml_file(p, f"population {path}")
    if not isinstance(data, dict):
        raise UserError(f"population {path}: expected a mapping at the top level")
    return _parse_population({"name": p.stem, **data}, str(path))


def _parse_population(data: dict, source: str) -> Population:
    try:
        pop = Population.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "(top level)"
        raise UserError(f"population {source}: {loc}: {first['msg']}") from None
    for field, template, needed in (("propose_template", pop.propose_template, {"persona"}),
                                    ("vote_template", pop.vote_template, {"persona", "statement"})):
        import string

        used = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        if used != needed:
            raise UserError(f"population {source}: {field}: must use exactly the fields {sorted(needed)}, "
                            f"not {sorted(used)}")
    return pop


# ---- statements (pure) -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Statement:
    id: str
    text: str
    axis: Axis
    author: str  # an agent id, or "seed"


def axis_of(text: str) -> Axis:
    """The 3H axis whose keywords ``text`` names most (ties in the order harmless, honest, helpful); helpful
    when it names none (a principle about answering well is the common case)."""
    low = text.lower()
    hits = {a: sum(low.count(k) for k in KEYWORDS[a]) for a in AXES}
    best = max(AXES, key=lambda a: hits[a])  # max keeps the first of equal counts: the tie order
    return best if hits[best] > 0 else "helpful"


def clean_proposal(text: str, min_words: int) -> str | None:
    """A generated proposal's first line, unquoted; None when it is no principle: a refusal, an abstention, too
    short to state one, or not about the assistant's behaviour (it names neither "response" nor "assistant": a
    small model asked for a principle often answers some other request instead)."""
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "").strip().strip("\"'").strip()
    if len(line.split()) < min_words or is_refusal(line) or is_abstention(line):
        return None
    if not any(w in line.lower() for w in ("response", "assistant")):
        return None
    return line


def dedupe(texts: Sequence[str], threshold: float) -> list[int]:
    """Positions of the texts kept, in order: a text whose ROUGE-L F1 with an earlier kept one is >= ``threshold``
    is a near-duplicate and dropped (as Self-Instruct filters its pool, Wang et al. 2023, sec. 2.3)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    kept: list[int] = []
    for i, t in enumerate(texts):
        if all(scorer.score(texts[j], t)["rougeL"].fmeasure < threshold for j in kept):
            kept.append(i)
    return kept


# ---- votes and their aggregation (pure) ------------------------------------------------------------------------
AGREE, DISAGREE, PASS = 1.0, -1.0, 0.0


def votes_of(p_yes: Sequence[float | None], pass_margin: float, baseline: Literal["agent", "half"] = "agent"
             ) -> list[float]:
    """One agent's votes from its P(Yes) per statement: agree (+1) above its baseline by more than
    ``pass_margin``, disagree (-1) below by more, pass (0) within it or when unreadable. Baseline: the agent's
    mean P(Yes) over the statements it saw (``agent``) or 1/2 (``half``)."""
    seen = [p for p in p_yes if p is not None]
    base = 0.5 if baseline == "half" or not seen else sum(seen) / len(seen)
    out = []
    for p in p_yes:
        if p is None or abs(p - base) <= pass_margin:
            out.append(PASS)
        else:
            out.append(AGREE if p > base else DISAGREE)
    return out


def cluster_voters(matrix: NDArray[Any], k: int, seed: int) -> list[int]:
    """Opinion groups of voters (rows) from their vote vectors (+1 / -1 / 0, NaN = not shown), as Polis does:
    a missing vote is imputed with the statement's mean vote, rows are projected on 2 principal components, and
    k-means (scikit-learn, ``random_state=seed``) clusters the projections. Deterministic under the seed;
    ``k`` is capped by the number of distinct vote vectors."""
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    m = np.array(matrix, dtype=float)
    col = np.nanmean(np.where(np.isnan(m).all(axis=0), 0.0, m), axis=0) if m.size else m
    filled = np.where(np.isnan(m), col, m)
    distinct = len({tuple(r) for r in np.round(filled, 9)})
    k = max(1, min(k, distinct))
    if k == 1:
        return [0] * len(m)
    comps = min(2, filled.shape[1], filled.shape[0])
    proj = PCA(n_components=comps, random_state=seed).fit_transform(filled)
    labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(proj)
    # name the clusters by first appearance, so the labels do not depend on k-means' internal numbering
    order: dict[int, int] = {}
    return [order.setdefault(int(c), len(order)) for c in labels]


def group_agree_rates(matrix: NDArray[Any], labels: Sequence[int]) -> NDArray[Any]:
    """(groups x statements) smoothed agree rates P_g(agree) = (A_g + 1) / (S_g + 2): A_g agrees and S_g votes
    seen (agree, disagree or pass) in group g (Polis's Laplace-smoothed estimate)."""
    import numpy as np

    m = np.asarray(matrix, dtype=float)
    lab = np.asarray(labels)
    rows = []
    for g in sorted(set(labels)):
        sub = m[lab == g]
        agree = np.nansum(sub == AGREE, axis=0)
        seen = np.sum(~np.isnan(sub), axis=0)
        rows.append((agree + 1.0) / (seen + 2.0))
    return np.array(rows)


def group_informed_consensus(rates: NDArray[Any]) -> NDArray[Any]:
    """Per statement: prod_g P_g(agree) over the opinion groups (Polis group-informed consensus,
    compdemocracy.org/group-informed-consensus; polismath conversation.clj; used by CCAI, Huang et al. 2024)."""
    import numpy as np

    return np.prod(np.asarray(rates, dtype=float), axis=0)  # Polis GIC = prod_g (A_g + 1) / (S_g + 2)


def majority(matrix: NDArray[Any]) -> NDArray[Any]:
    """Per statement: agrees / votes seen (0 when unseen): the plain majority a bridging rank is compared with."""
    import numpy as np

    m = np.asarray(matrix, dtype=float)
    seen = np.sum(~np.isnan(m), axis=0)
    return np.where(seen > 0, np.nansum(m == AGREE, axis=0) / np.maximum(seen, 1), 0.0)


def rank(scores: Sequence[float]) -> list[int]:
    """Positions by descending score, ties by position (stable)."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def select(ranked: Sequence[int], axes: Sequence[Axis], k: int) -> list[int]:
    """``k`` positions: the best-ranked of each axis present (so the constitution covers what the critique and
    judge code asks per axis), then the rest by rank; returned in rank order."""
    bests: dict[str, int] = {}
    for i in ranked:  # each axis's best statement, axes in the order their best ranks
        bests.setdefault(axes[i], i)
    chosen = list(bests.values())[:k]
    chosen += [i for i in ranked if i not in chosen][: max(0, k - len(chosen))]
    pos = {i: r for r, i in enumerate(ranked)}
    return sorted(chosen, key=pos.__getitem__)


# ---- the constitution file -------------------------------------------------------------------------------------
def to_constitution(name: str, statements: Sequence[Statement]) -> Constitution:
    """Principles ``cc-1`` .. in the given order, with the default constitution's templates."""
    return Constitution(name=name, version=1, templates=default_constitution().templates,
                        principles=[Principle(id=f"cc-{i + 1}", axis=s.axis, text=s.text)
                                    for i, s in enumerate(statements)])


def write_constitution(constitution: Constitution, path: str | Path, header: str = "") -> None:
    """The constitution as YAML in ``constitution.yaml``'s shape (``load_constitution`` reads it back), atomically."""
    from autoalign.store import atomic_write_text

    comment = "".join(f"# {line}\n" for line in header.splitlines())
    atomic_write_text(path, comment + yaml.safe_dump(constitution.model_dump(), sort_keys=False, allow_unicode=True,
                                                     width=120))


# ---- the conversation -------------------------------------------------------------------------------------------
@dataclass
class Conversation:
    """What a drafting produced: the statements, the vote matrix (agents x statements; NaN = not shown), the
    opinion groups, the per-statement scores and the chosen statements' positions."""

    agents: list[Agent]
    statements: list[Statement]
    matrix: Any
    clusters: list[int]
    consensus: list[float]
    majority: list[float]
    chosen: list[int]
    stats: dict[str, Any]

    def rows(self) -> list[dict]:
        """One row per statement for the artifact: text, axis, author, both scores and whether it was chosen."""
        return [{"id": s.id, "text": s.text, "axis": s.axis, "author": s.author,
                 "consensus": round(self.consensus[i], 6), "majority": round(self.majority[i], 6),
                 "chosen": i in self.chosen} for i, s in enumerate(self.statements)]


def draft(pop: Population, lm_for: Callable[[str], LM], *, proposals_per_agent: int = 2, votes_per_agent: int = 12,
          top_k: int = 6, dedupe_threshold: float = 0.7, pass_margin: float = 0.02, min_words: int = 4,
          min_votes: int = 3, clusters: int | None = None, vote_mode: Literal["auto", "logprob", "generate"] = "auto",
          temperature: float = 1.0, max_new_tokens: int = 32, seed: int = 0) -> Conversation:
    """Run the conversation of the module docstring; ``lm_for(spec)`` gives the LM of a group's model spec."""
    from autoalign.signals.society.debate import resolve_mode

    agents = agents_of(pop)
    by_model: dict[str, list[Agent]] = {}
    for a in agents:
        by_model.setdefault(a.model, []).append(a)
    # 1. propose
    texts: list[tuple[str, str, Axis | None]] = [(s.text.strip(), "seed", s.axis) for s in pop.seed_statements]
    dropped = 0
    if proposals_per_agent > 0:
        sampling = Sampling(n=proposals_per_agent, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
        for spec, group in by_model.items():
            asks: list[list[Message]] = [[{"role": "user", "content": pop.propose_template.format(persona=a.persona)}]
                                         for a in group]
            for a, outs in zip(group, lm_for(spec).generate(asks, sampling)):
                for c in outs:
                    line = clean_proposal(c.text, min_words)
                    if line is None:
                        dropped += 1
                    else:
                        texts.append((line, a.id, None))
    keep = dedupe([t for t, _, _ in texts], dedupe_threshold)
    statements = [Statement(f"s{n + 1}", texts[i][0], texts[i][2] or axis_of(texts[i][0]), texts[i][1])
                  for n, i in enumerate(keep)]
    if not statements:
        raise UserError(f"population {pop.name}: no statement to vote on (no seed statements, no usable proposal)")
    # 2. vote: each agent on a seeded sample of the others' statements
    import numpy as np

    matrix = np.full((len(agents), len(statements)), np.nan)
    shown: list[tuple[int, list[int]]] = []
    for r, a in enumerate(agents):
        pool = [j for j, s in enumerate(statements) if s.author != a.id]
        item_rng(seed, "votes", a.id).shuffle(pool)
        shown.append((r, sorted(pool[:votes_per_agent])))
    for spec in by_model:
        lm = lm_for(spec)
        rows = [(r, js) for r, js in shown if agents[r].model == spec]
        asks = [[{"role": "user", "content": pop.vote_template.format(persona=agents[r].persona,
                                                                       statement=statements[j].text)}]
                for r, js in rows for j in js]
        verdicts = iter(ask(lm, asks, FORMATS["yes_no"], resolve_mode(lm, vote_mode), samples=3, seed=seed))
        for r, js in rows:
            p = [next(verdicts).value for _ in js]
            for j, v in zip(js, votes_of(p, pass_margin)):
                matrix[r, j] = v
    # 3. aggregate
    k = clusters or len(pop.groups)
    labels = cluster_voters(matrix, k, seed)
    gic = group_informed_consensus(group_agree_rates(matrix, labels))
    maj = majority(matrix)
    seen = np.sum(~np.isnan(matrix), axis=0)
    gic = np.where(seen >= min_votes, gic, 0.0)  # too few votes to say: never chosen before a voted statement
    ranked = [i for i in rank(list(gic)) if seen[i] >= min_votes] or rank(list(gic))
    chosen = select(ranked, [s.axis for s in statements], top_k)
    votes = matrix[~np.isnan(matrix)]
    declared = [a.group for a in agents]
    from sklearn.metrics import adjusted_rand_score

    stats = {
        "agents": len(agents), "statements": len(statements), "seed_statements": len(pop.seed_statements),
        "proposals_kept": sum(s.author != "seed" for s in statements), "proposals_dropped": dropped,
        "near_duplicates": len(texts) - len(keep), "votes": int(votes.size),
        "agree": int((votes == AGREE).sum()), "disagree": int((votes == DISAGREE).sum()),
        "pass": int((votes == PASS).sum()), "opinion_groups": len(set(labels)),
        # do the opinion groups found from the votes recover the population's declared groups? (1 = exactly)
        "groups_recovered_ari": round(float(adjusted_rand_score(declared, labels)), 4),
        "chosen": [statements[i].id for i in chosen],
        "chosen_axes": {a: sum(statements[i].axis == a for i in chosen) for a in AXES},
        "majority_top_k_overlap": len(set(chosen) & set(rank(list(maj))[: len(chosen)])),
    }
    return Conversation(agents, statements, matrix, labels, [float(x) for x in gic], [float(x) for x in maj],
                        chosen, stats)


# ---- the signal --------------------------------------------------------------------------------------------------
ARTIFACT = "constitution"


class CollectiveConstitution:
    """Draft a constitution from a simulated population (once per run), then Constitutional AI's supervised stage
    with it (see the module docstring)."""

    name = "collective_constitution"

    def __init__(
        self,
        population: str | None = None,
        model: str | None = None,
        proposals_per_agent: int = 2,
        votes_per_agent: int = 12,
        top_k: int = 6,
        dedupe_threshold: float = 0.7,
        pass_margin: float = 0.02,
        min_words: int = 4,
        clusters: int | None = None,
        vote_mode: Literal["auto", "logprob", "generate"] = "auto",
        temperature: float = 1.0,
        max_new_tokens: int = 32,
        reviser: str = "lab:teacher",
        critique: Literal["none", "generate", "judge"] = "none",
        max_per_prompt: int = 1,
        revision_max_new_tokens: int = 64,
        seed: int = 0,
        load_lm: Callable | None = None,
    ):
        """``population``: a population YAML (default: the shipped three-camps population); ``model``: every
        agent's LM (``policy`` or a URI), replacing the file's; ``proposals_per_agent``: principles each agent
        writes (0: vote on the seed statements only); ``votes_per_agent``: statements each agent votes on (a
        seeded sample of the others'); ``top_k``: principles in the constitution; ``dedupe_threshold``: ROUGE-L F1
        at or above which a statement is a near-duplicate of an earlier one; ``pass_margin``: a vote within this
        of the agent's mean P(Yes) is a pass; ``min_words``: a generated proposal needs this many words;
        ``clusters``: opinion groups k-means looks for (default: the population's number of groups);
        ``vote_mode``: ``logprob``, ``generate`` or ``auto`` (as the debate judge's); ``temperature`` and
        ``max_new_tokens``: the proposals' sampling; ``reviser``: Constitutional AI's reviser (``policy`` or a
        URI); ``critique``: ``none``, ``generate`` or ``judge`` (as in ``constitutional_ai``);
        ``max_per_prompt``: drafts revised per prompt; ``revision_max_new_tokens``: the revisions' length;
        ``seed``: seeds the proposals, the vote samples and the clustering."""
        check_choice("vote_mode", vote_mode, ("auto", "logprob", "generate"))
        if top_k < 1 or proposals_per_agent < 0 or votes_per_agent < 1:
            raise ValueError("top_k and votes_per_agent must be >= 1, proposals_per_agent >= 0")
        if not 0.0 < dedupe_threshold <= 1.0 or not 0.0 <= pass_margin < 0.5:
            raise ValueError("dedupe_threshold must be in (0, 1] and pass_margin in [0, 0.5)")
        self.population_path = population
        self.population = load_population(population)  # a bad file fails when the recipe is built
        if model is not None:
            self.population = self.population.model_copy(
                update={"model": model, "groups": [g.model_copy(update={"model": None}) for g in self.population.groups]})
        self.load_lm = load_lm
        self.refs: dict[str, ModelRef] = {}
        self.options: dict[str, Any] = dict(
            proposals_per_agent=proposals_per_agent, votes_per_agent=votes_per_agent, top_k=top_k,
            dedupe_threshold=dedupe_threshold, pass_margin=pass_margin, min_words=min_words, clusters=clusters,
            vote_mode=vote_mode, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
        self.cai: dict[str, Any] = dict(reviser=reviser, critique=critique, max_per_prompt=max_per_prompt,
                                        max_new_tokens=revision_max_new_tokens, seed=seed, load_lm=load_lm)
        self._path: Path | None = None  # without a run context: the file drafted by an earlier call

    def constitution_file(self, policy: LM, ctx: StageContext | None) -> tuple[Path, dict, dict[str, Artifact]]:
        """(the constitution file, drafting stats, artifacts this call declared): drafted in the first round,
        read back from the stage's artifacts in later rounds (and after a resume)."""
        if ctx is not None and ARTIFACT in ctx.artifacts:
            return Path(ctx.artifacts[ARTIFACT]), {"source": "earlier round"}, {}
        if ctx is None and self._path is not None:
            return self._path, {"source": "earlier call"}, {}

        def lm_for(spec: str) -> LM:
            ref = self.refs.setdefault(spec, ModelRef(spec, self.load_lm, "population model"))
            return ref.get(policy)

        conv = draft(self.population, lm_for, **self.options)
        out = ctx.artifact_dir(self.name) if ctx is not None else Path(tempfile.mkdtemp(prefix="collective-"))
        from autoalign.store import write_jsonl

        write_jsonl(out / "statements.jsonl", conv.rows())
        path = out / "constitution.yaml"
        header = (f"Drafted by the simulated population {self.population.name!r} ({len(conv.agents)} agents): "
                  f"the top {len(conv.chosen)} of {len(conv.statements)} statements by group-informed consensus.")
        write_constitution(to_constitution(f"collective-{self.population.name}", [conv.statements[i] for i in conv.chosen]),
                           path, header)
        stats = {"source": "drafted", **conv.stats}
        if ctx is None:
            self._path = path
            return path, stats, {}
        return path, stats, {ARTIFACT: Artifact(kind="constitution", path=path.relative_to(ctx.dir).as_posix())}

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        from autoalign.signals.model_feedback.critique_revise import ConstitutionalAI

        path, stats, artifacts = self.constitution_file(policy, ctx)
        cai = ConstitutionalAI(constitution=str(path), **self.cai)
        res = cai(prompts, samples, policy, ctx)
        principles = [p.text for p in cai.constitution.principles]
        return SignalResult(
            labels=[x.model_copy(update={"signal": self.name}) for x in res.labels],
            sft=[x.model_copy(update={"signal": self.name}) for x in res.sft],
            stats={"constitution": {**stats, "principles": principles}, **res.stats}, artifacts=artifacts)
