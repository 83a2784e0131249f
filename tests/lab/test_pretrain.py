"""Pretraining is deterministic, cached per config hash, built atomically and once under concurrency."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from autoalign.lab import pretrain as pt
from autoalign.lab.pretrain import LAB_SIZES, LabConfig, ensure_lab_model, pack, token_weights

MICRO = LabConfig(layers=1, hidden=32, heads=2, intermediate=64, vocab=300, seq_len=64, steps=3, batch=4, lr=1e-3,
                  corpus_units=150, warmup=1)


def test_pretrain_is_deterministic(tmp_path):
    a = pt.pretrain(MICRO, tmp_path / "a", progress=False)
    b = pt.pretrain(MICRO, tmp_path / "b", progress=False)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    assert a["final_loss"] == b["final_loss"]
    info = json.loads((tmp_path / "a" / "lab.json").read_text())
    assert info["config"]["rates"]["harmful_compliance"] == MICRO.rates.harmful_compliance
    assert info["digest"] == MICRO.digest()


def test_digest_changes_with_any_setting():
    assert MICRO.digest() == replace(MICRO).digest()
    assert MICRO.digest() != replace(MICRO, seed=1).digest()
    assert MICRO.digest() != replace(MICRO, rates=replace(MICRO.rates, slip=0.3)).digest()
    assert set(LAB_SIZES) == {"tiny", "small", "teacher"}


def test_pack_keeps_texts_whole_and_weights_follow_roles():
    blocks, used = pack([[1, 2, 3], [4, 5], [6, 7, 8, 9]], seq_len=5, fill=0)
    assert blocks == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 0]] and used == [5, 4]
    text = "<|user|>\nhi<|end|>\n<|assistant|>\nyo<|end|>\n"
    i = text.index("yo")
    offsets = [(0, 8), (8, 9), (9, 11), (i, i + 2), (i + 2, i + 9), (i + 9, i + 10)]
    assert token_weights(text, offsets, 0.25) == [0.25, 0.25, 0.25, 1.0, 1.0, 0.25]
    assert token_weights("A is a baker.", [(0, 1), (1, 4)], 0.25) == [1.0, 1.0]


def _fake_builds(monkeypatch, calls: list):
    def fake(config, out, name="custom", progress=True):
        calls.append(name)
        time.sleep(0.3)
        (out / "lab.json").write_text("{}")
        return {}

    monkeypatch.setattr(pt, "pretrain", fake)
    monkeypatch.setitem(pt.LAB_SIZES, "micro", MICRO)


def test_ensure_builds_once_even_when_raced(tmp_path, monkeypatch):
    calls: list = []
    _fake_builds(monkeypatch, calls)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(ensure_lab_model("micro", tmp_path))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["micro"]
    assert len(set(results)) == 1 and results[0].name == f"micro-{MICRO.digest()}"
    assert ensure_lab_model("micro", tmp_path) == results[0] and calls == ["micro"]
    assert not [p for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith(".")]  # no temp dir left


def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    def boom(config, out, name="custom", progress=True):
        (out / "half").write_text("x")
        raise RuntimeError("killed")

    monkeypatch.setattr(pt, "pretrain", boom)
    monkeypatch.setitem(pt.LAB_SIZES, "micro", MICRO)
    with pytest.raises(RuntimeError):
        ensure_lab_model("micro", tmp_path)
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []


def test_cache_root_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOALIGN_CACHE", str(tmp_path))
    assert pt.cache_root() == tmp_path


def test_unknown_size_is_a_user_error():
    from autoalign.errors import UserError

    with pytest.raises(UserError):
        ensure_lab_model("huge")
