"""Peak memory of a generation stage at a real model's vocabulary: the provider's path against the one it replaced.

    python benchmarks/generation_memory.py --vocab 128256 --rows 256 --new-tokens 128 [--hidden 512 --layers 4]

Builds a randomly initialised Llama of the given shape (a word-level tokenizer of ``--vocab`` entries, so every id
decodes) in a temporary directory, then in a fresh process per path generates ``--rows`` rows of up to
``--new-tokens`` tokens (temperature 0.9, seeded) and reports the process's peak resident memory (``ru_maxrss``),
its growth over the loaded model, and the estimates it should follow:

- ``new``: ``HFModel.generate`` as it is: each drawn token's log-probability is recorded as it is drawn
  (``autoalign.models.hf._DrawnLogprobs``), so the stage grows with the batch's KV cache
  (rows x positions x layers x 2 x kv-width floats) and one step's [rows, vocab] scores;
- ``old``: what the provider did before: ``generate(output_logits=True)`` keeps every step's [rows, vocab]
  logits, then stacks them and takes their log-softmax (two more copies of [rows, steps, vocab]). Run only when
  its estimate is below ``--old-max-gib`` (16 GiB of retained logits at 256 x 128 x 128k would not fit here).

torch threads are set explicitly (``--threads``, default 1) and printed. Memory only: speed is
``benchmarks/generation.py``'s.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GIB = 1024**3


def build(out: Path, vocab: int, hidden: int, layers: int, heads: int, seed: int = 0) -> int:
    """A random Llama with a word-level tokenizer of ``vocab`` ids; returns its parameter count."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|pad|>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>", "[UNK]"]
    words = {w: i for i, w in enumerate(specials)}
    words.update({f"w{i}": i for i in range(len(specials), vocab)})
    tok = Tokenizer(models.WordLevel(words, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|end|>", pad_token="<|pad|>", unk_token="[UNK]")
    fast.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
                          "{% if add_generation_prompt %}<|assistant|> {% endif %}")
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 8 // 3,
                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                      max_position_embeddings=1024, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
                      bos_token_id=None, tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return sum(p.numel() for p in model.parameters())


def rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB  # ru_maxrss is in KiB on Linux


def child(args: argparse.Namespace) -> None:
    """One path in this process: load, generate, print a JSON line with the peak RSS."""
    import torch

    torch.set_num_threads(args.threads)
    from autoalign.models.base import Sampling
    from autoalign.models.hf import HFModel

    lm = HFModel(args.model_dir, batch_size=args.rows)
    words = [f"w{6 + (i * 7919) % (args.vocab - 6)}" for i in range(args.prompt_words)]
    prompts = [[{"role": "user", "content": " ".join(words[: args.prompt_words - r % 4])}] for r in range(args.rows)]
    sampling = Sampling(n=1, temperature=0.9, max_new_tokens=args.new_tokens, seed=0)
    loaded = rss_gib()
    t0 = time.perf_counter()
    if args.child == "new":
        out = lm.generate(prompts, sampling)
        tokens = sum(c[0].num_tokens or 0 for c in out)
    else:  # the replaced path, as it was: every step's logits kept, stacked, log-softmaxed
        from transformers import GenerationConfig, LogitsProcessorList, TemperatureLogitsWarper

        from autoalign.models.base import row_seed
        from autoalign.models.hf import _SeededGumbel

        ids = [lm._encode_prompt(p) for p in prompts]
        width, pad = max(len(x) for x in ids), lm.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids])
        attention = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
        procs = LogitsProcessorList([TemperatureLogitsWarper(0.9),
                                     _SeededGumbel([row_seed(0, p, 0) for p in prompts])])
        config = GenerationConfig(do_sample=False, max_new_tokens=args.new_tokens, pad_token_id=pad,
                                  eos_token_id=lm.tokenizer.eos_token_id, return_dict_in_generate=True,
                                  output_logits=True)
        with torch.inference_mode():
            result = lm.model.generate(input_ids=input_ids, attention_mask=attention, generation_config=config,
                                       logits_processor=procs)
            new = result.sequences[:, width:]
            logps = torch.stack(result.logits, dim=1).float().log_softmax(-1)
            float(logps.gather(-1, new.unsqueeze(-1)).sum())
        tokens = int(new.numel())
    print(json.dumps({"path": args.child, "loaded_gib": loaded, "peak_gib": rss_gib(), "tokens": tokens,
                      "seconds": time.perf_counter() - t0}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vocab", type=int, default=128256)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--prompt-words", type=int, default=24)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--old-max-gib", type=float, default=6.0)
    ap.add_argument("--child", choices=["new", "old"], default=None, help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return 0

    print(f"torch threads: {args.threads} (set by --threads, in each measuring process)")
    with tempfile.TemporaryDirectory() as tmp:
        params = build(Path(tmp), args.vocab, args.hidden, args.layers, args.heads)
        positions = args.prompt_words + 8 + args.new_tokens
        kv = args.rows * positions * args.layers * 2 * args.hidden * 4 / GIB
        step_scores = args.rows * args.vocab * 4 / GIB
        retained = args.rows * args.new_tokens * args.vocab * 4 / GIB
        print(f"random Llama: vocab {args.vocab}, hidden {args.hidden}, {args.layers} layers, "
              f"{params / 1e6:.0f}M parameters; {args.rows} rows x {args.new_tokens} new tokens")
        print(f"estimates: KV cache {kv:.2f} GiB, one step's scores {step_scores:.2f} GiB, "
              f"retained logits (old path) {retained:.2f} GiB (x3 with its stack and log-softmax)")
        rows = []
        for path in ("new", "old"):
            if path == "old" and 3 * retained > args.old_max_gib:
                print(f"old path skipped: its estimate {3 * retained:.1f} GiB is above --old-max-gib "
                      f"{args.old_max_gib}")
                continue
            cmd = [sys.executable, __file__, "--child", path, "--model-dir", tmp,
                   *(f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                     if k not in ("child", "model_dir") and v is not None)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{'path':<6}{'loaded GiB':>12}{'peak GiB':>10}{'growth GiB':>12}{'tokens':>9}{'seconds':>9}")
        for r in rows:
            print(f"{r['path']:<6}{r['loaded_gib']:>12.2f}{r['peak_gib']:>10.2f}"
                  f"{r['peak_gib'] - r['loaded_gib']:>12.2f}{r['tokens']:>9}{r['seconds']:>9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
