"""One round's training: the recipe's ``train.phases`` in order (``autoalign.train.phases.PHASES``), each
training the previous phase's output, in this process or under ``accelerate launch``.

Under ``launcher: accelerate`` the same code runs in N processes (DDP on GPUs, gloo on CPU; DeepSpeed / FSDP
through the accelerate config file named by ``train.accelerate_config`` or ``$ACCELERATE_CONFIG_FILE``, handed to
``accelerate launch --config_file``), which TRL supports natively.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from autoalign.errors import UserError
from autoalign.store import write_json


def in_subset(row: dict, data: str | None) -> bool:
    """Whether ``row`` belongs to the data slice ``data``: its ``subset`` is ``data`` or lies under it
    (``knowledge/people/facts`` is in ``knowledge``); every row is in the slice None."""
    if data is None:
        return True
    subset = str(row.get("subset") or "")
    return subset == data or subset.startswith(data.rstrip("/") + "/")


def select_rows(rows: Sequence[dict], data: str | None, replay: float, earlier: Sequence[dict],
                seed: int | str) -> tuple[list[dict], list[dict], int]:
    """A phase's training rows: those of ``rows`` in the slice ``data``, plus ``round(replay * len(earlier))`` of
    the earlier phases' rows drawn without replacement (seeded by ``seed``, in their original order). Returns
    (the rows to train on, the phase's own selection, for later phases to replay, how many were replayed). The
    ``subset`` tag is dropped from the rows a trainer sees."""
    own = [r for r in rows if in_subset(r, data)]
    k = min(len(earlier), int(round(replay * len(earlier))))
    picked = sorted(random.Random(f"replay-{seed}").sample(range(len(earlier)), k)) if k else []
    train = [{key: v for key, v in r.items() if key != "subset"} for r in [*own, *(earlier[i] for i in picked)]]
    return train, own, k


def _read_jsonl(path: str | Path) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]


def _train_inline(spec: dict) -> dict:
    """Run the phases of ``spec["train"]`` (a ``TrainConfig.model_dump()``), reporting to the trackers of
    ``spec["report_to"]``. Metrics: ``trained``,
    ``policy_dir`` (the last trained phase's model, else the input policy), ``phases`` (each phase's name, kind
    and status: ``trained``, or ``skipped`` with the reason), and each trained phase's trainer metrics under its
    name (``sft``, ``dpo``, ...; see ``phases.phase_names``)."""
    from autoalign.train.phases import PHASES, parse_phases, phase_names
    from autoalign.train.tracking import reporting_to

    out, policy = Path(spec["out_dir"]), spec["policy"]
    data = {"sft": _read_jsonl(spec["sft_path"]), "preferences": _read_jsonl(spec["dpo_path"]),
            "prompts": _read_jsonl(spec["prompts_path"]) if spec.get("prompts_path") else []}
    missing = {"sft": "no SFT examples", "preferences": "no preference pairs", "prompts": "no prompts"}
    phases = parse_phases(spec["train"]["phases"])
    metrics: dict = {"trained": False, "phases": []}
    earlier: dict[str, list[dict]] = {}  # per dataset, the rows earlier phases selected (what ``replay`` draws)
    with reporting_to(spec.get("report_to") or []):  # the recipe's train.report_to, for every phase's trainer
        for name, phase in zip(phase_names(phases), phases, strict=True):
            # a phase's ``data`` slice and ``replay`` of earlier phases' rows (all rows, none replayed, by default)
            part, replay = getattr(phase, "data", None), getattr(phase, "replay", 0.0)  # sft phases have them
            rows, own, replayed = select_rows(data[phase.consumes], part, replay, earlier.get(phase.consumes, []),
                                              f"{spec['seed']}-{name}")
            earlier.setdefault(phase.consumes, []).extend(own)
            sliced = {"data": part, "rows": len(rows), "replayed": replayed} if part is not None or replay else {}
            if not rows:
                reason = missing[phase.consumes] + (f" in data {part!r}" if part is not None else "")
                metrics["phases"].append({"name": name, "kind": phase.kind, "status": "skipped", "reason": reason,
                                          **sliced})
                continue
            metrics[name] = PHASES[phase.kind].run(phase, policy, rows, out / name, spec["seed"])
            policy, metrics["trained"] = str(out / name / "model"), True
            metrics["phases"].append({"name": name, "kind": phase.kind, "status": "trained", **sliced})
    metrics["policy_dir"] = policy
    return metrics


def launch_command(cfg, spec_path: Path) -> list[str]:
    """The ``accelerate launch`` command line for ``cfg.num_processes`` workers. With an accelerate config file
    (``train.accelerate_config`` or ``$ACCELERATE_CONFIG_FILE``), that file decides the distributed setup
    (DDP, DeepSpeed ZeRO, FSDP, mixed precision: TRL reads them from accelerate); without one, plain DDP."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(cfg.num_processes)]
    config_file = getattr(cfg, "accelerate_config", None) or os.environ.get("ACCELERATE_CONFIG_FILE")
    if config_file:
        if not Path(config_file).is_file():
            raise UserError(f"train.accelerate_config: file not found: {config_file}")
        cmd += ["--config_file", str(config_file)]
    else:
        cmd += ["--num_machines", "1", "--mixed_precision", "no"]
        if cfg.num_processes > 1:
            cmd += ["--multi_gpu"]  # accelerate's multi-process launcher is torchrun: on CPU it runs over gloo
    return cmd + ["-m", "autoalign.train.run", str(spec_path)]


def train_round(policy_path: Path, sft: list[dict], prefs: list[dict], stage_dir: Path, cfg, seed: int,
                prompts: list[dict] | None = None) -> dict:
    """Train on this round's data; the final policy is linked at ``stage_dir/model``. Returns metrics.
    ``prompts``: the round's prompts (``records.Prompt`` dumps), for the phases that consume them (online RL)."""
    stage_dir = Path(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train_sft.jsonl", sft), ("train_dpo.jsonl", prefs), ("train_prompts.jsonl", prompts or [])):
        (stage_dir / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {
        "policy": str(policy_path), "out_dir": str(stage_dir), "seed": seed, "train": cfg.model_dump(),
        "sft_path": str(stage_dir / "train_sft.jsonl"), "dpo_path": str(stage_dir / "train_dpo.jsonl"),
        "prompts_path": str(stage_dir / "train_prompts.jsonl"),
        # trackers (train.report_to) are kept out of cfg.model_dump(), the train stage's key: tracking a run does
        # not change what it trains, so turning it on never retrains a finished round
        "report_to": list(getattr(cfg, "report_to", None) or []),
    }
    if cfg.launcher == "accelerate":
        spec_path = stage_dir / "spec.json"
        write_json(spec_path, spec)
        cmd = launch_command(cfg, spec_path)
        proc = subprocess.run(cmd, env={**os.environ, "AUTOALIGN_TRAIN_WORKER": "1"})
        if proc.returncode != 0:
            raise UserError(f"training under accelerate failed with exit code {proc.returncode} (see log above)")
        metrics = json.loads((stage_dir / "train_metrics.json").read_text())
    else:
        metrics = _train_inline(spec)
    final = stage_dir / "model"
    if metrics["trained"]:
        src = Path(metrics["policy_dir"])
        if final.is_symlink() or final.exists():
            final.unlink()
        final.symlink_to(src.relative_to(stage_dir))
    return metrics


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":  # the worker entry point under accelerate launch
    spec = json.loads(Path(sys.argv[1]).read_text())
    result = _train_inline(spec)
    if int(os.environ.get("RANK", "0")) == 0:
        write_json(Path(spec["out_dir"]) / "train_metrics.json", result)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        # Tear the process group down before the interpreter does: a gloo group destroyed at exit can abort a
        # worker ("terminate called without an active exception") after the training itself succeeded.
        dist.barrier()
        dist.destroy_process_group()
