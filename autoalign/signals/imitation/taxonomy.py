"""The taxonomy of LAB (Large-scale Alignment for chatBots, Sudalairaj et al. 2024, sec. 3.1): a tree whose leaves
are the knowledge and skills a model should have, each with a few hand-written seed examples from which a teacher
writes synthetic training data (``autoalign.signals.imitation.lab_taxonomy``).

A taxonomy file is YAML, read through the project's bounded loader (``yaml_input.read_yaml_file``) and parsed here
once, at the edge, into ``Leaf`` records; every mistake is one ``UserError`` line naming the node's path
(``skills/helpful/arithmetic``), raised when the signal is built, so a recipe's preflight refuses it before any
model loads. Shape::

    name: my-taxonomy
    tree:                        # top-level nodes by name
      knowledge:
        kind: knowledge          # kind and axis are inherited by the node's descendants
        children:
          people:
            axis: honest
            document: ...        # optional context for a knowledge leaf (the teacher reads it)
            seeds:
              - {question: ..., answer: ...}
      skills:
        kind: skill
        children:
          sums: {ref: other/branch/sums}   # reuse: the node at that path, here too

A node is a branch (``children``) or a leaf (``seeds``), never both; a leaf needs a ``kind`` (``knowledge`` |
``skill``, its own or inherited) and at least one seed. ``ref`` names another node by path; a ref that leads back
into itself is a cycle. The project's default taxonomy (``taxonomy.yaml`` beside this module) covers the lab's
task families with seeds written by hand in the lab's response conventions.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autoalign.errors import UserError
from autoalign.records import Axis

Kind = Literal["knowledge", "skill"]
MAX_LEAVES = 10_000  # reuse through refs can multiply a tree; a bound keeps a mistake from expanding forever


class Seed(BaseModel):
    """One hand-written example of a leaf: a user question and the answer the model should give."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str = Field(min_length=1, description="the user's request")
    answer: str = Field(min_length=1, description="the answer, in the conventions the model should learn")
    prefix: str | None = Field(None, min_length=1, description=(
        "the opening of the question a teacher continues to write a new one (default: its first words)"))


class Node(BaseModel):
    """A node of the file as written: a branch, a leaf or a ``ref`` to another node (checked by ``resolve``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind | None = Field(None, description="knowledge or skill; inherited by the descendants")
    axis: Axis | None = Field(None, description="the 3H axis whose principle judges the leaf's data; inherited")
    description: str | None = Field(None, description="what the node covers, for people")
    document: str | None = Field(None, description="a knowledge leaf's context text, shown to the teacher")
    seeds: list[Seed] | None = Field(None, description="a leaf's seed examples (at least one)")
    children: dict[str, Node | None] | None = Field(None, description="a branch's child nodes by name")
    ref: str | None = Field(None, description="the path of another node used here (reuse)")


class TaxonomyFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    description: str | None = None
    tree: dict[str, Node | None]


class Leaf(BaseModel):
    """A resolved leaf: its path in the tree, its kind and axis (inherited where not its own), its seeds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    kind: Kind
    axis: Axis | None
    seeds: tuple[Seed, ...]
    document: str | None = None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


class Taxonomy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    source: str
    leaves: tuple[Leaf, ...]

    def of_kind(self, kind: Kind) -> list[Leaf]:
        return [leaf for leaf in self.leaves if leaf.kind == kind]


DEFAULT = "taxonomy.yaml"


def _node_path(loc: tuple) -> tuple[str, str]:
    """(node path, field) of a pydantic error location such as ``tree.a.children.b.seeds.0.answer``."""
    parts = [str(x) for x in loc]
    if parts and parts[0] == "tree":
        parts = parts[1:]
    names: list[str] = []
    i = 0
    while i < len(parts):
        names.append(parts[i])
        if i + 1 < len(parts) and parts[i + 1] == "children":
            i += 2
            continue
        break
    return "/".join(names), ".".join(parts[i + 1:])


def parse_taxonomy(data: object, source: str) -> Taxonomy:
    """The taxonomy in ``data`` (plain YAML values), resolved to its leaves; one ``UserError`` line naming the node
    on the first mistake. ``source`` names the file in the message."""
    what = f"taxonomy {source}"
    if not isinstance(data, dict):
        raise UserError(f"{what}: expected a mapping with a 'tree' of nodes at the top level")
    try:
        raw = TaxonomyFile.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        node, where = _node_path(first["loc"])
        if not node:
            raise UserError(f"{what}: {where or '(top level)'}: {first['msg']}") from None
        field = f" {where}:" if where else ""
        raise UserError(f"{what}: node {node}:{field} {first['msg']}") from None
    leaves = _Resolver(raw, what).run()
    return Taxonomy(name=raw.name or Path(source).stem, source=source, leaves=tuple(leaves))


class _Resolver:
    """Expands the tree depth-first into leaves, following refs, with each check of the module docstring."""

    def __init__(self, raw: TaxonomyFile, what: str):
        self.raw, self.what = raw, what
        self.leaves: list[Leaf] = []

    def fail(self, path: str, message: str) -> UserError:
        return UserError(f"{self.what}: node {path}: {message}")

    def lookup(self, target: str, at: str) -> Node:
        names = [n for n in target.strip("/").split("/") if n]
        nodes: dict[str, Node | None] | None = self.raw.tree
        node: Node | None = None
        for i, name in enumerate(names):
            if not nodes or name not in nodes or nodes[name] is None:
                raise self.fail(at, f"ref {target!r} names no node")
            node = nodes[name]
            assert node is not None
            if node.ref is not None and i < len(names) - 1:
                raise self.fail(at, f"ref {target!r} goes through another ref ({'/'.join(names[: i + 1])})")
            nodes = node.children
        if node is None:
            raise self.fail(at, f"ref {target!r} names no node")
        return node

    def run(self) -> list[Leaf]:
        if not self.raw.tree:
            raise UserError(f"{self.what}: tree: no nodes")
        for name, node in self.raw.tree.items():
            self.visit(name, name, node, None, None, ())
        return self.leaves

    def visit(self, path: str, canon: str, node: Node | None, kind: Kind | None, axis: Axis | None,
              stack: tuple[str, ...]) -> None:
        """``path``: where the node appears (what messages name); ``canon``: where it is defined (what a cycle
        repeats); ``stack``: the definitions being expanded above it."""
        if canon in stack:
            chain = " -> ".join([*stack[stack.index(canon):], canon])
            raise self.fail(path, f"ref cycle ({chain})")
        stack = (*stack, canon)
        if node is None:
            raise self.fail(path, "names nothing (a leaf needs seeds, a branch children)")
        if node.ref is not None:
            others = [k for k, v in node.model_dump(exclude={"ref"}).items() if v is not None]
            if others:
                raise self.fail(path, f"a ref node has no other keys (found {', '.join(others)})")
            target = "/".join(n for n in node.ref.strip("/").split("/") if n)
            self.visit(path, target, self.lookup(node.ref, path), kind, axis, stack)
            return
        kind, axis = node.kind or kind, node.axis or axis
        if node.children is not None and node.seeds is not None:
            raise self.fail(path, "has both children and seeds (a node is a branch or a leaf)")
        if node.children is not None:
            if not node.children:
                raise self.fail(path, "has no children (a branch needs at least one)")
            for name, child in node.children.items():
                self.visit(f"{path}/{name}", f"{canon}/{name}", child, kind, axis, stack)
            return
        if node.seeds is None:
            raise self.fail(path, "is a missing leaf: it has neither children nor seeds")
        if not node.seeds:
            raise self.fail(path, "has an empty seed list (a leaf needs at least one seed example)")
        if kind is None:
            raise self.fail(path, "has no kind (set kind: knowledge or skill on it or on a parent)")
        for i, seed in enumerate(node.seeds):
            if seed.prefix is not None and not seed.question.startswith(seed.prefix):
                raise self.fail(path, f"seeds.{i}.prefix: {seed.prefix!r} does not open the question")
        if node.document is not None and kind != "knowledge":
            raise self.fail(path, "has a document but is not a knowledge leaf")
        if len(self.leaves) >= MAX_LEAVES:
            raise self.fail(path, f"the tree expands to more than {MAX_LEAVES} leaves (refs reused too often?)")
        self.leaves.append(Leaf(path=path, kind=kind, axis=axis, seeds=tuple(node.seeds), document=node.document))


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """The taxonomy in the user's YAML file ``path``, or the project's default when ``path`` is None."""
    if path is None:
        text = resources.files(__package__).joinpath(DEFAULT).read_text(encoding="utf-8")
        import yaml

        return parse_taxonomy(yaml.safe_load(text), DEFAULT)
    from autoalign.yaml_input import read_yaml_file

    p = Path(path).expanduser()
    return parse_taxonomy(read_yaml_file(p, f"taxonomy {path}"), str(path))
