"""A constitution: short principles, each tied to one 3H axis, plus the prompt templates a judge or reviser reads.

The project's default (``constitution.yaml`` beside this file) is package data; a user's YAML of the same shape
replaces it (``load_constitution(path)``). Why principles carry an axis: a principle is sampled per prompt (Bai et
al. 2022 sample one per critique), and when the prompt says which axis it tests, the sampled principle is one that
applies to it; when it does not, any principle may be drawn.
"""

from __future__ import annotations

import random
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from autoalign.errors import UserError
from autoalign.records import Axis, Prompt

TEMPLATE_FIELDS = {
    "judge": {"principle", "request", "response"},
    "revise": {"principle", "request", "response"},
    "critique": {"principle", "request", "response"},
    "revise_with_critique": {"principle", "request", "response", "critique"},
    "compare": {"principle", "request", "response_a", "response_b"},
}


class Principle(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    axis: Axis
    text: str = Field(min_length=1)


class Templates(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    judge: str
    revise: str
    critique: str
    revise_with_critique: str
    compare: str


class Constitution(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int = 1
    principles: list[Principle] = Field(min_length=1)
    templates: Templates

    @field_validator("templates")
    @classmethod
    def _fields_known(cls, t: Templates) -> Templates:
        import string

        for name, allowed in TEMPLATE_FIELDS.items():
            used = {f for _, f, _, _ in string.Formatter().parse(getattr(t, name)) if f}
            if not used <= allowed:
                raise ValueError(f"template {name!r} uses unknown fields {sorted(used - allowed)} (allowed: {sorted(allowed)})")
        return t

    def for_axis(self, axis: str | None) -> list[Principle]:
        """The principles that apply to a prompt of ``axis`` (all of them when the axis is unknown or unmatched)."""
        matched = [p for p in self.principles if p.axis == axis]
        return matched or list(self.principles)

    def sample(self, prompt: Prompt, rng: random.Random, choose: Literal["axis", "any"] = "axis") -> Principle:
        """One principle for ``prompt``: among its axis's principles (``axis``) or among all (``any``)."""
        pool = self.for_axis(prompt.axis) if choose == "axis" else list(self.principles)
        return pool[rng.randrange(len(pool))]


DEFAULT_PATH = "constitution.yaml"


def default_constitution() -> Constitution:
    text = resources.files("autoalign.signals.model_feedback").joinpath(DEFAULT_PATH).read_text("utf-8")
    return _parse(yaml.safe_load(text), "<default constitution>")


def load_constitution(path: str | Path | None = None) -> Constitution:
    """The constitution at ``path`` (YAML), or the project's default when ``path`` is None. Missing templates in a
    user's file fall back to the default's, so a file may list principles only."""
    if path is None:
        return default_constitution()
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"constitution {path}: file not found")
    from autoalign.yaml_input import read_yaml_file

    data = read_yaml_file(p, f"constitution {path}")  # UTF-8, bounded size and alias expansion, one-line errors
    if not isinstance(data, dict):
        raise UserError(f"constitution {path}: expected a mapping at the top level")
    base = default_constitution().templates.model_dump()
    data = {**data, "templates": {**base, **(data.get("templates") or {})}}
    data.setdefault("name", p.stem)
    return _parse(data, str(path))


def _parse(data: dict, source: str) -> Constitution:
    try:
        return Constitution.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "(top level)"
        raise UserError(f"constitution {source}: {loc}: {first['msg']}") from None
