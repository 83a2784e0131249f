"""Ray sharding on a local Ray instance with 2 CPUs: same records, same order; dead workers restarted."""

from __future__ import annotations

import functools
import os
import sys

import pytest

from autoalign.errors import UserError
from autoalign.models.base import Sampling

ray = pytest.importorskip("ray")

from autoalign.distributed.ray_shard import RayShardedLM  # noqa: E402

PROMPTS = [
    [{"role": "user", "content": f"what is {i} + {i + 1}?"}] if i % 2 else f"hello {i} world" for i in range(12)
]
CONTS = [" The answer is 4.", " I don't know."] * 6


@pytest.fixture(scope="module")
def local_ray():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves this machine ...
        mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # ... and a single-node Ray binds 127.0.0.1 only
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers get this module's functions
        yield ray
        ray.shutdown()


def score_pairs(lm, items):
    """A judge-shaped callable: one score per (prompt, response) item."""
    return lm.logprobs([p for p, _ in items], [c for _, c in items])


def crash_once_then_score(lm, items, marker: str):
    """Kill the worker process the first time any worker runs it; Ray restarts the actor and sends the shard
    again."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return score_pairs(lm, items)
    os.close(fd)
    os._exit(1)


def always_crash(lm, items):
    os._exit(1)


@pytest.mark.timeout(300)
def test_sharded_records_equal_single_process_and_dead_workers_are_retried(
    local_ray, backend_model_dir, tmp_path, one_torch_thread
):
    from autoalign.models.hf import HFModel

    uri = f"hf:{backend_model_dir}"
    sampling = Sampling(n=2, temperature=1.0, max_new_tokens=8, seed=3)
    single = HFModel(backend_model_dir, uri=uri, device="cpu", batch_size=64)
    want = single.generate(PROMPTS, sampling)
    want_scores = single.logprobs(PROMPTS, CONTS)
    marker = tmp_path / "crashed"
    with RayShardedLM(uri, num_workers=2, options={"device": "cpu", "batch_size": 3}, shard_size=2) as lm:
        before = lm.worker_pids()
        assert len(set(before)) == 2 and os.getpid() not in before
        assert lm.fingerprint() == single.fingerprint()
        got = lm.generate(PROMPTS, sampling)
        # The same records in the same order: texts, finish reasons and token counts exactly; the summed
        # log-probs to float32 rounding (HFModel's padded batches differ between a 2-prompt shard and one
        # 12-prompt batch, which moves the last bits of a sum, not a sampled token).
        assert [[(c.text, c.finish_reason, c.num_tokens) for c in cs] for cs in got] == [
            [(c.text, c.finish_reason, c.num_tokens) for c in cs] for cs in want
        ]
        assert [c.logprob for cs in got for c in cs] == pytest.approx(
            [c.logprob for cs in want for c in cs], rel=1e-5, abs=1e-5
        )
        assert lm.logprobs(PROMPTS, CONTS) == pytest.approx(want_scores, rel=1e-5, abs=1e-5)
        judged = lm.map(functools.partial(crash_once_then_score, marker=str(marker)), list(zip(PROMPTS, CONTS)))
        after = lm.worker_pids()
    assert marker.exists()  # a worker did die ...
    assert len(set(before) - set(after)) == 1  # ... and was restarted as a new process
    assert judged == pytest.approx(want_scores, rel=1e-5, abs=1e-5)  # its shard was retried: nothing lost


@pytest.mark.timeout(300)
def test_a_worker_that_keeps_dying_is_one_clear_error(local_ray, backend_model_dir):
    with RayShardedLM(f"hf:{backend_model_dir}", num_workers=1, options={"device": "cpu"},
                      max_restarts=0, max_task_retries=0) as lm:
        with pytest.raises(UserError, match="a worker failed after Ray's restarts and retries"):
            lm.map(always_crash, [1, 2])


def test_missing_ray_is_a_clear_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UserError, match=r"pip install 'autoalign\[ray\]'"):
        RayShardedLM("hf:/nowhere")


def test_shards_cover_every_item_once():
    lm = RayShardedLM.__new__(RayShardedLM)
    lm.num_workers, lm.shard_size = 2, None
    for n in (1, 7, 8, 9, 100):
        spans = lm.shards(n)
        assert [i for a, b in spans for i in range(a, b)] == list(range(n))
        assert len(spans) <= 8
        assert all(a < b for a, b in spans)  # no empty shard is sent to a worker ...
        assert len(spans) >= min(n, lm.num_workers)  # ... and every worker gets one when there are items enough
    # shard size ceil(n / (4 * workers)): 9 items on 2 workers go out as four pairs and a single
    assert lm.shards(9) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 9)]
    assert lm.shards(100)[-2:] == [(78, 91), (91, 100)] and lm.shards(0) == []
    lm.shard_size = 3  # an explicit shard_size wins
    assert lm.shards(7) == [(0, 3), (3, 6), (6, 7)]


@pytest.mark.timeout(300)
def test_a_judging_stage_on_ray_gives_the_single_process_labels(local_ray, backend_model_dir, one_torch_thread):
    """The signals stage sharded (``sampling.ray.judging``): the policy as its own logprob judge, on 2 replicas."""
    from autoalign.lab.prompts import lab_prompts
    from autoalign.models.hf import HFModel
    from autoalign.records import Sample
    from autoalign.signals.model_feedback.llm_judge import LLMJudge

    uri = f"hf:{backend_model_dir}"
    single = HFModel(backend_model_dir, uri=uri, device="cpu")
    prompts = lab_prompts(6, seed=5)
    outs = single.generate([p.messages for p in prompts], Sampling(n=2, temperature=0.9, max_new_tokens=16, seed=1))
    samples = [Sample(prompt_id=p.id, index=j, text=c.text, model=uri)
               for p, cs in zip(prompts, outs) for j, c in enumerate(cs)]
    assert len(samples) == 12  # 6 prompts x 2 samples: the comparisons below are not over nothing
    judge = LLMJudge(judge="policy", mode="logprob", output="both", min_gap=0.0)
    want = judge(prompts, samples, single)
    with RayShardedLM(uri, num_workers=2, options={"device": "cpu", "batch_size": 4}, shard_size=2) as lm:
        got = judge(prompts, samples, lm)
        assert lm.path == str(backend_model_dir)  # a sharded policy is still trainable from its directory
    assert len(want.labels) == len(samples)
    assert [(x.prompt_id, x.sample_index, x.verdict) for x in got.labels] == [
        (x.prompt_id, x.sample_index, x.verdict) for x in want.labels]
    assert [x.score for x in got.labels] == pytest.approx([x.score for x in want.labels], abs=1e-5)
    assert len(got.preferences) == len(want.preferences) and len(got.sft) == len(want.sft)


def test_recipe_routes_signals_to_ray_only_when_judging(monkeypatch, tmp_path):
    from autoalign import loop
    from autoalign.recipe import Recipe

    made = []

    class FakeSharded:
        def __init__(self, uri, workers, **kw):
            made.append((uri, workers))
            self.uri = uri

        def shutdown(self):
            pass

    monkeypatch.setattr("autoalign.distributed.ray_shard.RayShardedLM", FakeSharded)
    loaded = []

    def load_lm(uri, **options):
        loaded.append(uri)
        return object()

    def run(judging: bool):
        recipe = Recipe(name="r", policy="lab:tiny", run_dir=str(tmp_path), signals=[{"method": "llm_judge"}],
                        sampling={"ray": {"workers": 2, "judging": judging}})
        return loop.Run(recipe, load_lm=load_lm)

    on = run(True)
    assert isinstance(on.models.signal_policy("lab:tiny"), FakeSharded) and isinstance(on.models.signal_load("lab:small"),
                                                                                   FakeSharded)
    assert made == [("lab:tiny", 2), ("lab:small", 2)] and loaded == []
    assert on.models.sampler("lab:tiny") is on.models.signal_policy("lab:tiny")  # one set of replicas for both stages
    off = run(False)
    assert not isinstance(off.models.signal_policy("lab:tiny"), FakeSharded) and loaded == ["lab:tiny"]
    assert isinstance(off.models.sampler("lab:tiny"), FakeSharded)  # sampling alone stays sharded
