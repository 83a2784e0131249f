"""The artifacts a run's stages declared (a reward model, a corrector, a constitution): typed, inside the run
directory, and found from the stage manifests, never from a user cache or an untyped stats key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autoalign.signals.base import Artifact


@dataclass(frozen=True)
class Entry:
    round: int
    signal: int  # position of the declaring signal in the recipe's ``signals``
    name: str
    artifact: Artifact
    path: Path  # absolute: the stage directory joined with ``artifact.path``


class Artifacts:
    """Every artifact declared so far in this run, in the order rounds declared them."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def keep(self, k: int, stage_dir: Path, declared: dict[int, dict[str, Artifact]]) -> None:
        self.entries += [Entry(k, i, name, a, stage_dir / a.path) for i, arts in declared.items()
                         for name, a in arts.items()]

    def of_signal(self, i: int) -> dict[str, Path]:
        """What signal ``i`` declared in earlier rounds, by name (the newest wins): its ``StageContext.artifacts``."""
        return {e.name: e.path for e in self.entries if e.signal == i}

    def latest(self, kind: str, k: int) -> Path | None:
        """The newest artifact of ``kind`` declared by round ``k`` or earlier."""
        found = [e.path for e in self.entries if e.artifact.kind == kind and e.round <= k]
        return found[-1] if found else None

    def declared_in(self, k: int, kind: str) -> dict[int, Path]:
        """Artifacts of ``kind`` declared in round ``k``, by signal position."""
        return {e.signal: e.path for e in self.entries if e.round == k and e.artifact.kind == kind}

    @staticmethod
    def to_manifest(declared: dict[int, dict[str, Artifact]]) -> dict:
        return {str(i): {n: a.model_dump() for n, a in arts.items()} for i, arts in declared.items() if arts}

    @staticmethod
    def from_manifest(manifest: dict) -> dict[int, dict[str, Artifact]]:
        return {int(i): {n: Artifact(**a) for n, a in arts.items()} for i, arts in manifest.get("artifacts", {}).items()}
