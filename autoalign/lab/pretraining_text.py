"""Pretraining-like text for PPO-ptx (``autoalign.train.ppo_ptx``): a fresh draw of the lab corpus generator.

InstructGPT's ptx term (Ouyang et al. 2022, eq. 2) keeps the RL policy's log-likelihood up on the pretraining
distribution. For a lab policy that distribution is ``autoalign.lab.corpus``: the same builder and mix the base
model was pretrained with (knowledge-base documents, chat transcripts of every family, judging examples), drawn
with its own seed so the texts are new draws of that distribution. Nothing here changes the corpus or any cached
lab model (the corpus itself is untouched; this module only reads it).
"""

from __future__ import annotations

import random

from autoalign.lab.corpus import CorpusConfig, build_corpus
from autoalign.lab.world.honest import known_people


def lab_texts(count: int, seed: int = 0, path: str | None = None) -> list[str]:
    """``count`` texts of the policy's pretraining distribution (``CorpusConfig`` defaults), deterministic in
    (count, seed). ``path`` is not used (the ``file`` source's argument)."""
    # build_corpus writes one document per known person first, then the mix: a corpus ten times that size keeps
    # those documents near their share of the real corpus (a few percent) instead of most of a small draw
    units = max(10 * len(known_people()), 2 * count)
    texts, _ = build_corpus(CorpusConfig(units=units, seed=10_000 + seed))
    return random.Random(f"ptx-{seed}").sample(texts, min(count, len(texts)))
