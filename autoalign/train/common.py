"""What the trainers share: loading a policy directory, LoRA, saving a plain Hugging Face directory, the arguments
every TRL trainer takes, and datasets on disk."""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import datasets
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

# The run draws its own training bar (``quiet``); datasets' per-map bars, transformers' tqdm bars and log dicts,
# and deprecation chatter only bury it. TRL's reference log-prob passes use tqdm directly: TQDM_DISABLE (``quiet``).
datasets.disable_progress_bars()
hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()
warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\..*")
warnings.filterwarnings("ignore", category=UserWarning, module=r"trl\..*")


def load_policy(model_path: str | Path):
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=dtype, use_safetensors=True)
    return model, tokenizer


def peft_config(lora: dict | None):
    """A PEFT LoraConfig from plain values, or None for full fine-tuning."""
    if not lora:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=lora["r"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"],
        target_modules=lora["target_modules"],
        task_type="CAUSAL_LM",
    )


def save_policy(model, tokenizer, out_dir: str | Path) -> Path:
    """Save merged weights (LoRA folded in) as safetensors, atomically: build beside, then rename."""
    out_dir = Path(out_dir)
    if int(os.environ.get("RANK", "0")) != 0:  # under accelerate, rank 0 alone writes the policy
        return out_dir
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model = model.to(torch.float32) if not torch.cuda.is_available() else model
    from autoalign.store import atomic_directory

    with atomic_directory(out_dir) as tmp:  # a failed save (a full disk) leaves nothing half-written behind
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return out_dir


def common_args(out_dir: Path, seed: int, epochs: float, lr: float, batch_size: int, grad_accum: int,
                max_steps: int | None = None) -> dict:
    """TrainingArguments shared by every trainer: seeded, no checkpoints, CPU fp32 / GPU bf16; trackers only within
    ``autoalign.train.tracking.reporting_to`` (the recipe's ``train.report_to``; none by default).
    ``max_steps`` (optimizer steps) overrides ``epochs`` when given."""
    from autoalign.train.tracking import current_report_to

    return dict(
        output_dir=str(out_dir),
        seed=seed,
        data_seed=seed,
        num_train_epochs=epochs,
        max_steps=max_steps if max_steps is not None else -1,
        learning_rate=lr,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        logging_steps=5,
        save_strategy="no",
        report_to=current_report_to(),
        bf16=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        disable_tqdm=True,  # the run's own bar (``quiet``) shows the steps and the loss
    )


def to_dataset(rows: list[dict], directory: Path):
    """A datasets.Dataset backed by an Arrow file in ``directory`` (one per rank).

    An in-memory dataset keeps its cache in a per-process temp dir; TRL's precomputed reference log-probs are
    cached beside the dataset's file and read back by every rank, so under ``accelerate launch`` the dataset must
    live in a directory all ranks share.
    """
    from datasets import Dataset

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rank = int(os.environ.get("RANK", "0"))
    return Dataset.from_list(rows).flatten_indices(cache_file_name=str(directory / f"data-rank{rank}.arrow"))


@contextlib.contextmanager
def no_tqdm() -> Iterator[None]:
    """tqdm silenced while the block runs (``TQDM_DISABLE``, restored after): TRL's DPO-family trainers run the
    reference model over the whole dataset while they are built (``precompute_ref_log_probs``), drawing a tqdm
    bar outside ``quiet``'s reach."""
    previous = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = previous


def quiet(trainer: Any) -> Any:
    """The trainer without transformers' console output (a tqdm bar and a raw log dict every ``logging_steps``)
    and with a rich bar instead: ``round k: training sft ━━━ 12/54 loss 0.0538``, on the run's console
    (``autoalign.console.using``), transient, on rank 0 only; the run prints the phase's summary line when the
    stage ends. The logs themselves are kept in ``trainer.state.log_history``: only their printing changes.
    ``trainer.train`` is wrapped so that the bar closes however training ends (an error, Ctrl-C), and so that
    TRL's own tqdm loops (reference log-probs) stay silent while it runs."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback, TrainerCallback

    from autoalign import console as out

    class _Bar(TrainerCallback):
        bar: Any = None
        task: Any = None

        def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001 - transformers' signature
            if self.bar is not None:
                self.task = self.bar.add_task(f"{prefix}training {Path(args.output_dir).parent.name}",
                                              total=state.max_steps or None, loss="…")

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            if self.bar is not None and self.task is not None:
                self.bar.update(self.task, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if self.bar is not None and self.task is not None and logs and "loss" in logs:
                self.bar.update(self.task, loss=f"{float(logs['loss']):.4f}")

    for cb in (ProgressCallback, PrinterCallback):
        trainer.remove_callback(cb)
    callback = _Bar()
    trainer.add_callback(callback)
    console, prefix = out.current()
    train = trainer.train

    def train_with_bar(*args: Any, **kwargs: Any) -> Any:
        with no_tqdm():
            try:
                if int(os.environ.get("RANK", "0")) != 0:
                    return train(*args, **kwargs)
                with out.progress(console, "loss") as bar:
                    callback.bar = bar
                    return train(*args, **kwargs)
            finally:
                callback.bar = None

    trainer.train = train_with_bar
    return trainer


def train_and_save(trainer: Any, tokenizer: Any, out_dir: Path) -> dict:
    """Train (quietly) and save the policy to ``out_dir/model``; the metrics every phase reports, with
    ``loss_log``: the loss TRL logged every ``logging_steps`` (``[{"step", "loss"}]``), the report's loss curve."""
    result = quiet(trainer).train()
    save_policy(trainer.model, tokenizer, out_dir / "model")
    loss_log = [{"step": int(h["step"]), "loss": round(float(h["loss"]), 6)}
                for h in trainer.state.log_history if "loss" in h and "step" in h]
    return {"train_loss": float(result.training_loss), "steps": int(result.global_step), "loss_log": loss_log}
