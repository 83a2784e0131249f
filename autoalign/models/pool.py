"""The models a run holds: the policy (one in memory at a time), its Ray replicas, and the models a signal or a
policy wrapper names by URI, each loaded with the recipe's provider options (``models.<uri>``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from autoalign.errors import UserError


class ModelPool:
    """``lm(uri)``: the in-process model (the previous one is dropped first: one policy in memory at a time);
    ``sampler(uri)``: the policy for sampling, sharded over Ray workers when the recipe asks; ``signal_policy`` /
    ``signal_load``: what signals see, sharded too with ``sampling.ray.judging``; ``aux(uri)``: one second model
    held beside the policy (an upstream model a corrector follows)."""

    def __init__(self, recipe: Any, cache: Any, load_lm: Callable | None = None):
        from autoalign.models.registry import load_lm as default_load

        self.recipe, self.cache = recipe, cache
        self._load_lm = load_lm or default_load
        self._lms: dict[str, Any] = {}
        self._ray: dict[str, Any] = {}
        self._aux: tuple[str | None, Any] = (None, None)

    def options(self, uri: str) -> dict:
        options = {"batch_size": self.recipe.sampling.batch_size, **self.recipe.models.get(uri, {})}
        if uri.startswith("openai:"):
            options.setdefault("cache", self.cache)  # every completed call lands in the cache at once
        return options

    def load(self, uri: str, **extra: Any) -> Any:
        """A fresh model for ``uri`` with the recipe's provider options (a bad option is the user's error)."""
        try:
            return self._load_lm(uri, **{**self.options(uri), **extra})
        except TypeError as exc:
            raise UserError(f"recipe models.{uri}: {exc}") from None

    def lm(self, uri: str) -> Any:
        if uri not in self._lms:
            self._lms.clear()
            self._lms[uri] = self.load(uri)
        return self._lms[uri]

    def aux(self, uri: str) -> Any:
        if self._aux[0] != uri:
            self._aux = (uri, None)  # drop the previous one before loading the next
            self._aux = (uri, self.load(uri))
        return self._aux[1]

    def sampler(self, uri: str) -> Any:
        return self.lm(uri) if self.recipe.sampling.ray is None else self.ray_lm(uri)

    def ray_lm(self, uri: str) -> Any:
        """``uri`` sharded over the recipe's Ray workers (one replica each), kept until training frees them."""
        if uri not in self._ray:
            from autoalign.distributed.ray_shard import RayShardedLM

            ray = self.recipe.sampling.ray
            options = {k: v for k, v in self.options(uri).items() if k != "cache"}
            self._ray[uri] = RayShardedLM(uri, ray.workers, options=options, address=ray.address,
                                          num_cpus=ray.num_cpus, num_gpus=ray.num_gpus,
                                          cache_dir=str(self.cache.path.parent))
        return self._ray[uri]

    def _judging_on_ray(self) -> bool:
        return self.recipe.sampling.ray is not None and self.recipe.sampling.ray.judging

    def signal_policy(self, uri: str) -> Any:
        return self.ray_lm(uri) if self._judging_on_ray() else self.lm(uri)

    def signal_load(self, uri: str, **options: Any) -> Any:
        return self.ray_lm(uri) if self._judging_on_ray() else self.load(uri, **options)

    def local_path(self, uri: str) -> Path:
        path = getattr(self.lm(uri), "path", None)
        if path is None:
            raise UserError(f"recipe policy: {uri!r} cannot be trained here (no local weights)")
        return Path(path)

    def release(self) -> None:
        """Free every model before training (the sampler's copy and the Ray replicas)."""
        self._lms.clear()
        for lm in self._ray.values():
            lm.shutdown()
        self._ray.clear()
