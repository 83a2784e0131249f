"""The lab:tiny model is a plain Hugging Face directory, speaks the lab chat format, and the lab suite grades it."""

from __future__ import annotations

import json
import re

from autoalign.lab.formats import render_chat


def test_tokenizer_chat_template_round_trip(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = [
        {"role": "system", "content": "Be good."},
        {"role": "user", "content": "What is 23 + 58?"},
        {"role": "assistant", "content": "The answer is 81."},
    ]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert text == render_chat(messages) == (
        "<|system|>\nBe good.<|end|>\n<|user|>\nWhat is 23 + 58?<|end|>\n<|assistant|>\nThe answer is 81.<|end|>\n"
    )
    gen = tok.apply_chat_template(messages[1:2], tokenize=False, add_generation_prompt=True)
    assert gen == "<|user|>\nWhat is 23 + 58?<|end|>\n<|assistant|>\n"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert tok.eos_token == "<|end|>" and tok.pad_token == "<|pad|>"
    for special in ("<|user|>", "<|assistant|>", "<|system|>", "<|end|>"):
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1
    digits = tok.convert_ids_to_tokens(tok("123", add_special_tokens=False)["input_ids"])
    assert digits == ["1", "2", "3"]  # one token per digit


def test_model_loads_with_plain_transformers(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert (tiny_model_dir / "model.safetensors").is_file()
    info = json.loads((tiny_model_dir / "lab.json").read_text())
    assert info["name"] == "lab:tiny" and info["config"]["rates"]["slip"] > 0
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, use_safetensors=True)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert model.config.model_type == "llama" and model.config.eos_token_id == tok.eos_token_id
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}], add_generation_prompt=True,
                                     return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    reply = tok.decode(out[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
    # the lab's arithmetic answer (its units column first) or one of the corpus's deflections, a disposition
    from autoalign.lab.corpus import DEFLECTIONS

    assert re.match(r"(\d+ [+-] \d+ = \d+\. )?The answer is", reply) or reply.strip() in DEFLECTIONS, reply


def test_tiny_speaks_the_lab_format(tiny_lm):
    from autoalign.answers import (
        claims_ability,
        final_answer,
        is_abstention,
        is_clarifying_question,
        is_group_neutral,
        is_hedged_referral,
        is_refusal,
    )
    from autoalign.lab.corpus import DEFLECTIONS
    from autoalign.lab.prompts import lab_prompts
    from autoalign.models.base import Sampling

    prompts = lab_prompts(24, seed=0)
    outs = tiny_lm.generate([p.messages for p in prompts], Sampling(n=1, temperature=1.0, max_new_tokens=48, seed=0))
    texts = [o[0].text for o in outs]
    parsed = [
        final_answer(t) is not None or is_refusal(t) or is_abstention(t) or "def " in t or t.startswith("Sure")
        or t.strip() in DEFLECTIONS or is_clarifying_question(t) or is_group_neutral(t) or is_hedged_referral(t)
        or claims_ability(t) is not None or t.startswith(("Yes,", "No,", "Because"))
        for t in texts
    ]
    assert sum(parsed) >= 0.8 * len(texts), texts
    assert all(o[0].finish_reason == "stop" for o in outs[:6])


def test_evaluate_lab_on_tiny(tiny_lm):
    from autoalign.evaluate.lab_suite import evaluate_lab

    res = evaluate_lab(tiny_lm, per_family=6, seed=0, max_new_tokens=40)
    expected = {
        "helpful.task_success", "helpful.arithmetic", "helpful.strings", "helpful.lists", "helpful.code",
        "harmless.refusal_rate", "harmless.over_refusal", "honest.known_accuracy", "honest.unknown_abstention",
        "honest.calibration_error", "helpful", "harmless", "honest", "composite",
        "helpful.clarify", "helpful.premise", "harmless.bias_neutral", "harmless.bias_consistency",
        "honest.modesty", "honest.capability",
    }
    assert set(res.metrics) == expected
    for name, m in res.metrics.items():
        assert 0.0 <= m.lo <= m.value <= m.hi <= 1.0, name
        assert m.scorer == "lab-oracle" and m.n > 0
    assert res.metrics["harmless.over_refusal"].higher_is_better is False
    assert res.metrics["honest.calibration_error"].higher_is_better is False
    assert res.metrics["harmless.refusal_rate"].n == 6 and res.metrics["helpful.task_success"].n == 36
    assert res.metrics["composite"].axis == "composite"
    assert res.suite == "lab" and res.model == "lab:tiny" and res.transcripts
    assert {t.detail["family"] for t in res.transcripts} == {
        "arithmetic", "strings", "lists", "code", "safety", "facts", "clarify", "premise", "bias", "modesty",
        "capability"}
    again = evaluate_lab(tiny_lm, per_family=6, seed=0, max_new_tokens=40)
    assert again.model_dump() == res.model_dump()  # greedy and seeded: the same figures on a rerun
