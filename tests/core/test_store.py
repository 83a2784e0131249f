"""Atomic writes, stage manifests and parts, and the SQLite call cache (hand-checked values)."""

import json
import multiprocessing as mp

from autoalign.models.base import Completion, Sampling
from autoalign.records import Sample
from autoalign.store import CachedLM, CallCache, Stage, atomic_write_text, chunks, hash_json, sha256_text


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "a" / "b.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["b.txt"]


def test_manifest_marks_done_only_for_its_key(tmp_path):
    stage = Stage(tmp_path, "samples")
    rows = [Sample(prompt_id="p1", index=0, text="x", model="m"), Sample(prompt_id="p1", index=1, text="y", model="m")]
    stage.write_part("samples", 0, rows[:1])
    stage.write_part("samples", 1, rows[1:])
    assert not stage.is_done("k1")
    stage.finish("k1", {"n": 2}, {"prompts": "abc"}, {"samples": 2})
    m = json.loads((tmp_path / "samples" / "manifest.json").read_text())
    assert stage.is_done("k1") and not stage.is_done("k2")
    assert m["counts"] == {"samples": 2}
    assert m["inputs"] == {"prompts": "abc"}
    assert m["config_hash"] == hash_json({"n": 2})
    line = rows[0].model_dump_json() + "\n"
    assert m["outputs"]["samples-00000.jsonl"] == sha256_text(line)
    assert [r.text for r in stage.read_parts("samples", Sample)] == ["x", "y"]


def test_stale_parts_are_dropped_when_the_key_changes(tmp_path):
    stage = Stage(tmp_path, "s")
    stage.reset_if_stale("a")
    stage.write_part("samples", 0, [{"v": 1}])
    stage.reset_if_stale("a")
    assert stage.part_done("samples", 0)
    stage.reset_if_stale("b")
    assert not stage.part_done("samples", 0)


def test_chunks_are_stable():
    assert [(i, list(c)) for i, c in chunks([1, 2, 3, 4, 5], 2)] == [(0, [1, 2]), (1, [3, 4]), (2, [5])]


class CountingLM:
    uri = "fake:count"

    def __init__(self):
        self.calls = []

    def fingerprint(self):
        return "fp"

    def generate(self, prompts, sampling):
        self.calls.append(list(prompts))
        return [[Completion(text=f"{p}-{j}-{sampling.seed}") for j in range(sampling.n)] for p in prompts]

    def logprobs(self, prompts, continuations):
        self.calls.append(list(prompts))
        return [-float(len(c)) for c in continuations]


def test_cached_lm_only_sends_misses(tmp_path):
    lm = CountingLM()
    cached = CachedLM(lm, CallCache(tmp_path))
    s = Sampling(n=2, seed=3)
    first = cached.generate(["a", "b"], s)
    second = cached.generate(["b", "c", "a"], s)
    assert lm.calls == [["a", "b"], ["c"]]
    assert second[0] == first[1] and second[2] == first[0]
    assert second[1][1].text == "c-1-3"
    assert (cached.hits, cached.misses) == (2, 3)
    cached.generate(["a"], Sampling(n=2, seed=4))  # another seed is another call
    assert lm.calls[-1] == ["a"]
    assert cached.logprobs(["a", "a"], ["xy", "xyz"]) == [-2.0, -3.0]
    assert cached.logprobs(["a"], ["xyz"]) == [-3.0] and len(lm.calls) == 4


def _writer(directory, start):
    cache = CallCache(directory)
    for i in range(start, start + 200):
        cache.put_many({f"k{i}": i})


def test_cache_survives_concurrent_processes(tmp_path):
    procs = [mp.get_context("spawn").Process(target=_writer, args=(str(tmp_path), s)) for s in (0, 100, 200)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = CallCache(tmp_path)
    assert len(cache) == 400
    assert cache.get_many(["k0", "k399"]) == {"k0": 0, "k399": 399}
