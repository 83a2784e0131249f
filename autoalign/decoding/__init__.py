"""Policy wrappers: methods that change what a policy answers at inference, without training it (best-of-n under a
reward model, an Aligner-style corrector after an upstream model; Linear Alignment later). Each is one module with
its own pydantic config (``method:`` discriminates it in ``eval.wrappers``) and a class with

- ``role``: ``replace`` (evaluation measures the wrapped model instead of the policy: the corrector's whole point)
  or ``variant`` (the wrapped model is measured beside the policy, as suite ``<suite>@<tag>``);
- ``tag``, ``suites``;
- ``evaluated_uri(k, policy_uri)``: what the round's figures are of;
- ``wrap(k, policy_lm, env) -> LM | None``: the wrapped model for round ``k`` (None: nothing to wrap yet), where
  ``env`` is the loop's ``WrapperEnv`` (``load_aux(uri)``, ``artifact(kind, k)``, ``eval`` config).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol


class WrapperEnv(Protocol):
    """What the loop offers a wrapper: a second model by URI, the newest artifact of a kind declared by round
    ``k`` or earlier (from the stage manifests), and the recipe's evaluation settings."""

    eval: Any

    def load_aux(self, uri: str) -> Any: ...

    def artifact(self, kind: str, k: int) -> Path | None: ...


class PolicyWrapper(Protocol):
    role: Literal["replace", "variant"]
    tag: str
    suites: list[str] | None

    def evaluated_uri(self, k: int, policy_uri: str) -> str: ...

    def wrap(self, k: int, policy_lm: Any, env: WrapperEnv) -> Any | None: ...
