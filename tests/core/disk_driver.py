"""A miniature run for the disk-fault tests: what a run writes, through ``autoalign.store`` only.

``python -m tests.core.disk_driver DIR`` takes DIR's run lock, removes a killed write's temporaries, then builds,
each step resumable: a call cache answered by a mock LM, sample parts one chunk at a time, a stage manifest, a
saved "model" directory (a few hundred KB) and a metrics file. Exit 0 when done; a ``UserError`` (a disk fault
among them) is one line on stderr and exit 2, as the CLI does. Rerun after the fault is fixed, it finishes with
the files an uninterrupted run writes.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from autoalign.errors import UserError
from autoalign.models.base import Sampling
from autoalign.models.registry import load_lm
from autoalign.store import (
    CachedLM,
    CallCache,
    Stage,
    atomic_directory,
    chunks,
    clean_temporaries,
    run_lock,
    write_json,
)

PROMPTS = [f"prompt number {i}: {'pad ' * (i % 7)}" for i in range(48)]
SAMPLING = Sampling(n=2, temperature=0.7, max_new_tokens=16, seed=5)


def build(run_dir: Path) -> None:
    with run_lock(run_dir):
        clean_temporaries(run_dir)
        lm = CachedLM(load_lm("mock:"), CallCache(run_dir / "cache"))
        stage = Stage(run_dir, "round-1/samples")
        if not stage.is_done("k1"):
            stage.reset_if_stale("k1")
            for index, chunk in chunks(PROMPTS, 8):
                if stage.part_done("samples", index):
                    continue
                outs = lm.generate(list(chunk), SAMPLING)
                stage.write_part("samples", index, [{"prompt": p, "index": j, "text": c.text}
                                                    for p, cs in zip(chunk, outs) for j, c in enumerate(cs)])
            stage.finish("k1", {"n": SAMPLING.n}, {}, {"samples": 2 * len(PROMPTS)})
        model = run_dir / "round-1" / "train" / "model"
        if not (model / "weights.bin").exists():
            with atomic_directory(model) as tmp:
                (tmp / "config.json").write_text('{"layers": 2}\n')
                block = hashlib.sha256(b"weights").digest() * 8192  # 256 KiB, the same bytes every run
                (tmp / "weights.bin").write_bytes(block)
        write_json(run_dir / "metrics.json", {"samples": len(stage.read_parts("samples")), "model": "run:round-1/train/model"})


def main(argv: list[str]) -> int:
    try:
        build(Path(argv[0]))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
