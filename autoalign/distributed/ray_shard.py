"""Shard generation, scoring and judging over Ray actors, each holding its own model replica.

Why it is built this way:
- Each actor builds its replica from the model URI (``load_lm(uri, **options)``), so nothing heavy is pickled and
  an actor that restarts rebuilds the same model. API keys stay in each node's environment, as for one process.
- Work goes out in contiguous shards through ``ray.util.ActorPool.map``, which balances shards over idle actors
  and returns results in submission order: concatenated, they are the records of a single-process run in the same
  order. The providers sample per (seed, prompt, sample index), never per batch, so the texts are the same too.
- Failures are Ray's to handle: an actor that dies is restarted (``max_restarts``) and the shard it held is sent
  again (``max_task_retries``); only when those run out does the call fail, with one clear line.
- ``RayShardedLM`` implements the ``LM`` protocol, so any stage that takes an LM takes a sharded one; ``map``
  runs any ``fn(lm, items) -> list`` (one result per item) the same way, e.g. a judge over (prompt, response) pairs.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Sequence

from autoalign.errors import UserError
from autoalign.models.base import Completion, Prompt, Sampling, scored_choice_logprobs


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise UserError("Ray sharding needs Ray, which is not installed: pip install 'autoalign[ray]'") from exc
    return ray


class Replica:
    """The actor body: one model replica and the calls a shard needs. Plain class; made a Ray actor on use."""

    def __init__(self, uri: str, options: dict[str, Any], cache_dir: str | None):
        from autoalign.models.registry import load_lm

        lm = load_lm(uri, **options)
        self.raw = lm
        if cache_dir:
            from autoalign.store import CachedLM, CallCache

            lm = CachedLM(lm, CallCache(cache_dir))  # SQLite WAL: safe for every actor on a shared disk
        self.lm = lm

    def fingerprint(self) -> str:
        return self.lm.fingerprint()

    def generate(self, prompts: list[Prompt], sampling: Sampling) -> list[list[Completion]]:
        return self.lm.generate(prompts, sampling)

    def logprobs(self, prompts: list[Prompt], continuations: list[str]) -> list[float]:
        return self.lm.logprobs(prompts, continuations)

    def choice_logprobs(self, prompts: list[Prompt], choices: list[str]) -> list[list[float]]:
        """A judge's single-token choices in one pass where the replica's provider can (``HFModel``), else one
        scored row per (prompt, choice) through the cached ``logprobs``."""
        fast = getattr(self.raw, "choice_logprobs", None)
        if callable(fast):
            return [list(row) for row in fast(prompts, choices)]
        return scored_choice_logprobs(self.lm, prompts, choices)

    def path(self) -> str | None:
        path = getattr(self.raw, "path", None)
        return None if path is None else str(path)

    def apply(self, fn: Callable[[Any, list], list], items: list) -> list:
        out = list(fn(self.lm, items))
        if len(out) != len(items):
            raise ValueError(f"{getattr(fn, '__name__', fn)!r} returned {len(out)} results for {len(items)} items")
        return out

    def pid(self) -> int:
        return os.getpid()


class RayShardedLM:
    """``LM`` whose calls are sharded over ``num_workers`` Ray actors, each with a replica of ``uri``.

    ``address``: a running cluster (``"auto"``, ``"ray://head:10001"``); None starts or joins a local instance
    (``init_options`` go to ``ray.init``). ``num_cpus`` / ``num_gpus``: what each actor reserves (a GPU replica
    wants ``num_gpus=1``). ``shard_size``: prompts per task (default: about four shards per worker, so a slow
    worker does not hold the rest back). ``cache_dir``: a ``CallCache`` directory every actor reads and writes.
    """

    def __init__(
        self,
        uri: str,
        num_workers: int = 2,
        *,
        options: dict[str, Any] | None = None,
        address: str | None = None,
        num_cpus: float = 1,
        num_gpus: float = 0,
        shard_size: int | None = None,
        max_restarts: int = 3,
        max_task_retries: int = 3,
        cache_dir: str | os.PathLike | None = None,
        init_options: dict[str, Any] | None = None,
    ):
        if num_workers < 1:
            raise UserError(f"ray sharding of {uri}: num_workers must be >= 1")
        ray = _import_ray()
        from ray.util import ActorPool

        self.ray = ray
        self.uri = uri
        self.num_workers = num_workers
        self.shard_size = shard_size
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": False, **(init_options or {})}
            try:
                ray.init(address=address, **kwargs)
            except ConnectionError as exc:
                raise UserError(f"ray: cannot connect to the cluster at {address!r}: {exc}") from exc
        actor = ray.remote(Replica).options(
            num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=max_restarts, max_task_retries=max_task_retries
        )
        self.actors = [
            actor.remote(uri, dict(options or {}), str(cache_dir) if cache_dir else None) for _ in range(num_workers)
        ]
        self.pool = ActorPool(self.actors)
        self._fingerprint: str | None = None

    # ---- LM protocol ----------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """The replicas' own fingerprint: a sharded model caches under the same keys as a single one."""
        if self._fingerprint is None:
            self._fingerprint = self._get(self.actors[0].fingerprint.remote())
        return self._fingerprint

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        return self._sharded(list(prompts), lambda actor, shard: actor.generate.remote(shard, sampling))

    def logprobs(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        if len(prompts) != len(continuations):
            raise ValueError("logprobs: prompts and continuations must have the same length")
        pairs = list(zip(prompts, continuations))
        return self._sharded(
            pairs, lambda actor, shard: actor.logprobs.remote([p for p, _ in shard], [c for _, c in shard])
        )

    def choice_logprobs(self, prompts: Sequence[Prompt], choices: Sequence[str]) -> list[list[float]]:
        """log P(choice | prompt) per prompt and choice (a judge's verdict tokens), sharded over the replicas."""
        choices = list(choices)
        return self._sharded(list(prompts), lambda actor, shard: actor.choice_logprobs.remote(shard, choices))

    @property
    def path(self) -> str | None:
        """The replicas' model directory when it is local (a trainable policy), else None."""
        if not hasattr(self, "_path"):
            self._path = self._get(self.actors[0].path.remote())
        return self._path

    def map(self, fn: Callable[[Any, list], list], items: Sequence) -> list:
        """``fn(lm, shard) -> list`` on every shard of ``items``, on the replicas; results in ``items`` order.
        ``fn`` must be importable or picklable by Ray (a module-level function or a ``functools.partial``)."""
        return self._sharded(list(items), lambda actor, shard: actor.apply.remote(fn, shard))

    # ---- plumbing -------------------------------------------------------------------------------------------
    def shards(self, n: int) -> list[tuple[int, int]]:
        size = self.shard_size or max(1, math.ceil(n / (4 * self.num_workers)))
        return [(start, min(n, start + size)) for start in range(0, n, size)]

    def _sharded(self, items: list, submit: Callable) -> list:
        if not items:
            return []
        shards = [items[a:b] for a, b in self.shards(len(items))]
        try:
            parts = list(self.pool.map(submit, shards))
        except self.ray.exceptions.RayError as exc:
            raise self._user_error(exc) from exc
        return [x for part in parts for x in part]

    def _get(self, ref):
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            raise self._user_error(exc) from exc

    def _user_error(self, exc: BaseException) -> UserError:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, UserError):  # a replica's own UserError (bad URI, server down) passes through
            return cause
        first = " ".join(str(cause or exc).split())[:300]
        return UserError(f"ray sharding of {self.uri}: a worker failed after Ray's restarts and retries: {first}")

    def worker_pids(self) -> list[int]:
        return [self._get(a.pid.remote()) for a in self.actors]

    def shutdown(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []

    def __enter__(self) -> "RayShardedLM":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
