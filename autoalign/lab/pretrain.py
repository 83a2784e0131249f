"""Pretrain the lab's models (``lab:tiny``, ``lab:small``, ``lab:teacher``) on the lab corpus, on CPU, in minutes.

``lab:teacher`` continues ``lab:small``'s pretraining on the teacher corpus (``corpus.TEACHER_MIX``: mostly clean
verdicts, comparisons, revisions and good answers): the same world and tokenizer, a better judge and a better
answerer than the policies, at a fraction of a base model's cost.

A Llama-style model (``transformers.LlamaForCausalLM``, fp32) trained from scratch with a plain PyTorch loop: this
is pretraining of a world-building fixture, not alignment, so TRL has nothing to add. Deterministic from the
config (seeded init and data order, fixed thread count, deterministic algorithms). The result is cached per
(size, config hash) under ``$AUTOALIGN_CACHE/lab`` (or the user cache dir), built in a temporary directory, renamed
into place atomically, and guarded by a file lock so concurrent processes build it once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from autoalign.lab.corpus import POLICY_MIX, TEACHER_MIX, TEACHER_RATES, BehaviourRates, CorpusConfig, build_corpus
from autoalign.lab.formats import END
from autoalign.lab.world.common import EVAL_SHARE, WORLD_SEED

# Bump when the world, corpus or training code changes in a way that changes the model: it is part of the hash.
LAB_VERSION = 3
ASSISTANT = "<|assistant|>\n"


@dataclass(frozen=True)
class LabConfig:
    """Architecture, corpus and optimisation of one lab base model."""

    layers: int
    hidden: int
    heads: int
    intermediate: int
    vocab: int
    seq_len: int
    steps: int
    batch: int
    lr: float
    corpus_units: int
    warmup: int = 30
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    seed: int = 0
    threads: int = 2
    prompt_loss_weight: float = 0.2  # loss weight of non-assistant chat tokens (documents count fully)
    rates: BehaviourRates = field(default_factory=BehaviourRates)
    mix: dict[str, float] = field(default_factory=lambda: dict(POLICY_MIX))
    init_from: str | None = None  # a lab size whose weights and tokenizer this one continues from

    def corpus(self) -> CorpusConfig:
        return CorpusConfig(units=self.corpus_units, seed=self.seed, rates=self.rates, mix=dict(self.mix))

    def digest(self) -> str:
        """Hash of everything that determines the model (config, lab version, world seed, corpus mix, and the
        digest of the model it continues from)."""
        payload = {"config": asdict(self), "corpus": self.corpus().to_dict(), "version": LAB_VERSION,
                   "world": [WORLD_SEED, EVAL_SHARE],
                   "init": LAB_SIZES[self.init_from].digest() if self.init_from else None}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


LAB_SIZES: dict[str, LabConfig] = {
    # Used by the test suite: must build in under a minute on 2 cores.
    "tiny": LabConfig(layers=2, hidden=128, heads=4, intermediate=384, vocab=1024, seq_len=192, steps=380, batch=16,
                      lr=3e-3, corpus_units=30_000),
    # Used by the demo: a few minutes on 2 cores.
    "small": LabConfig(layers=4, hidden=192, heads=6, intermediate=512, vocab=1024, seq_len=192, steps=1200,
                       batch=16, lr=2e-3, corpus_units=100_000),
    # The judge and teacher of the demo's model-feedback recipes: lab:small continued on the teacher corpus.
    "teacher": LabConfig(layers=4, hidden=192, heads=6, intermediate=512, vocab=1024, seq_len=192, steps=600,
                         batch=16, lr=1e-3, corpus_units=40_000, warmup=10, rates=TEACHER_RATES,
                         mix=dict(TEACHER_MIX), init_from="small", seed=1),
}


def cache_root() -> Path:
    env = os.environ.get("AUTOALIGN_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("autoalign"))


def ensure_lab_model(size: str, cache_dir: Path | None = None, progress: bool = True) -> Path:
    """The directory of lab model ``size``, pretraining it first if it is not cached yet (safe to call from
    several processes at once: one builds, the others wait on the lock and reuse its result)."""
    if size not in LAB_SIZES:
        from autoalign.errors import UserError

        raise UserError(f"unknown lab model {size!r} (known: {', '.join(LAB_SIZES)})")
    config = LAB_SIZES[size]
    root = Path(cache_dir) if cache_dir is not None else cache_root() / "lab"
    final = root / f"{size}-{config.digest()}"
    if (final / "lab.json").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "lab.json").is_file():  # another process built it while we waited
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=root))
        try:
            pretrain(config, tmp, name=size, progress=progress)
            if final.exists():  # a half-written leftover cannot happen (rename is atomic) but a foreign dir can
                shutil.rmtree(final)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


@contextlib.contextmanager
def _torch_settings(threads: int) -> Iterator[None]:
    """Fixed thread count and deterministic kernels for the build; the caller's settings come back after."""
    import torch

    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


def token_weights(text: str, offsets: list[tuple[int, int]], prompt_weight: float) -> list[float]:
    """Loss weight per token: 1 inside assistant turns (content and closing ``<|end|>``) and in plain documents,
    ``prompt_weight`` elsewhere in a chat (user and system turns, role markers). Why: the model's capacity goes to
    how it answers, while it still learns what users ask (which self-instruct style signals sample)."""
    if "<|user|>" not in text:
        return [1.0] * len(offsets)
    spans, i = [], 0
    while (start := text.find(ASSISTANT, i)) >= 0:
        start += len(ASSISTANT)
        end = text.find(END, start)
        end = len(text) if end < 0 else end + len(END)
        spans.append((start, end))
        i = end
    return [1.0 if any(a <= s0 < b for a, b in spans) else prompt_weight for s0, _ in offsets]


def pack(rows: list[list], seq_len: int, fill) -> tuple[list[list], list[int]]:
    """Greedy packing of whole texts into blocks of ``seq_len`` (texts longer than a block are cut), so every
    block starts at a text boundary as inference prompts do. Returns the blocks and each block's used length."""
    blocks: list[list] = []
    used: list[int] = []
    current: list = []
    for x in rows:
        x = x[:seq_len]
        if len(current) + len(x) > seq_len:
            blocks.append(current + [fill] * (seq_len - len(current)))
            used.append(len(current))
            current = []
        current = current + x
    if current:
        blocks.append(current + [fill] * (seq_len - len(current)))
        used.append(len(current))
    return blocks, used


def pretrain(config: LabConfig, out: Path, name: str = "custom", progress: bool = True) -> dict:
    """Build corpus and tokenizer, train, and save a Hugging Face model directory (safetensors) into ``out``."""
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from transformers import LlamaConfig, LlamaForCausalLM, get_cosine_with_min_lr_schedule_with_warmup

    from autoalign.lab.tokenizer import train_tokenizer

    start = time.time()
    with _torch_settings(config.threads):
        texts, counts = build_corpus(config.corpus())
        init_dir = ensure_lab_model(config.init_from, out.parent, progress) if config.init_from else None
        if init_dir is not None:  # same tokenizer as the model it continues
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(init_dir)
        else:
            tokenizer = train_tokenizer(texts, config.vocab, max_length=2 * config.seq_len)
        enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
        weights = [token_weights(t, o, config.prompt_loss_weight) for t, o in zip(texts, enc["offset_mapping"])]
        blocks, used = pack(enc["input_ids"], config.seq_len, tokenizer.pad_token_id)
        wblocks, _ = pack(weights, config.seq_len, 0.0)
        data = torch.tensor(blocks, dtype=torch.long)
        mask = torch.arange(config.seq_len)[None, :] < torch.tensor(used)[:, None]
        # Token t is predicted from position t - 1, so the weight of a prediction is its target's weight.
        target_w = torch.tensor(wblocks)[:, 1:]

        torch.manual_seed(config.seed)
        model = LlamaForCausalLM.from_pretrained(init_dir) if init_dir is not None else LlamaForCausalLM(
            LlamaConfig(
                vocab_size=len(tokenizer), hidden_size=config.hidden, intermediate_size=config.intermediate,
                num_hidden_layers=config.layers, num_attention_heads=config.heads,
                num_key_value_heads=config.heads, max_position_embeddings=2 * config.seq_len,
                tie_word_embeddings=True, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
        model.train()
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=config.lr, betas=(0.9, 0.95),
        )
        scheduler = get_cosine_with_min_lr_schedule_with_warmup(
            optimizer, config.warmup, config.steps, min_lr_rate=config.min_lr_ratio
        )
        order = torch.Generator().manual_seed(config.seed)
        perm = torch.randperm(len(blocks), generator=order)
        cursor = 0
        losses: list[float] = []
        columns = [TextColumn(f"pretraining lab:{name}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]:.3f}"), TimeElapsedColumn()]
        with Progress(*columns, disable=not progress, transient=False) as bar:
            task = bar.add_task("pretrain", total=config.steps, loss=float("nan"))
            for _ in range(config.steps):
                if cursor + config.batch > len(perm):  # next epoch, new order
                    perm, cursor = torch.randperm(len(blocks), generator=order), 0
                rows = perm[cursor : cursor + config.batch]
                cursor += config.batch
                logits = model(input_ids=data[rows], attention_mask=mask[rows].long()).logits[:, :-1]
                nll = torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), data[rows, 1:].reshape(-1), reduction="none"
                )
                w = target_w[rows].reshape(-1)
                loss = (nll * w).sum() / w.sum()  # token-weighted causal LM loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.item())
                bar.update(task, advance=1, loss=sum(losses[-20:]) / len(losses[-20:]))
        model.eval()
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
    info = {
        "name": f"lab:{name}",
        "lab_version": LAB_VERSION,
        "digest": config.digest(),
        "config": asdict(config),
        "corpus": {"units": len(texts), "tokens": sum(used), "blocks": len(blocks), "counts": counts},
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_loss": sum(losses[-50:]) / max(1, len(losses[-50:])),
        "seconds": round(time.time() - start, 1),
    }
    (out / "lab.json").write_text(json.dumps(info, indent=2))
    return info
