"""Instruction synthesis (Self-Instruct complete, Evol-Instruct, instruction back-translation): the indexed ROUGE-L
filter equals brute force, each filter and elimination rule by hand, lineage records complete, the curation rule
by hand, and one round of each recipe on lab:tiny."""

import json
import random
import subprocess
from pathlib import Path

import pytest

from autoalign.errors import UserError
from autoalign.recipe import load_recipe
from autoalign.records import Sample
from autoalign.signals import catalog
from autoalign.signals.base import StageContext
from autoalign.signals.imitation.backtranslation import (
    BACKWARD_PROMPT,
    Backtranslation,
    as_response,
    curate,
    parse_instruction,
    seed_pairs,
)
from autoalign.signals.imitation.evol_instruct import (
    EvolInstructConfig,
    EvolInstructWriter,
    answer_reason,
    elimination_reason,
    evolve,
    operation_prompt,
)
from autoalign.signals.imitation.rouge_index import RougeIndex, brute_force_nearest, rouge_l, words
from autoalign.signals.imitation.self_instruct import (
    SelfInstructConfig,
    SelfInstructWriter,
    filter_reason,
    parse_input,
    synthesize,
    with_input,
)
from tests.model_feedback.fakes import FakeLM, lab_prompt

ROOT = Path(__file__).resolve().parents[2]


class _Tok:
    chat_template = "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"

    def apply_chat_template(self, messages, tokenize=False):
        return "".join(f"<|{m['role']}|>\n{m['content']}<|end|>\n" for m in messages)


def chat_lm(reply) -> FakeLM:
    lm = FakeLM(reply=reply)
    lm.tokenizer = _Tok()
    return lm


# ---- the ROUGE-L index ------------------------------------------------------------------------------------------
def test_the_bound_skips_only_items_that_cannot_reach_the_threshold():
    index = RougeIndex(["a b c d", "a x y z w v", "q r s"])
    # candidate "a b c e" (m = 4): shared with item 0 = 3 -> 2*3 >= 0.7*(4+4) = 5.6, scored; with item 1 = 1 ->
    # 2 < 0.7*(4+6) = 7, skipped; item 2 shares nothing
    assert index.candidates("a b c e", 0.7) == [0]
    assert index.nearest("a b c e", 0.7) == (0, pytest.approx(0.75))  # LCS 3: F = 2*3/8
    assert index.nearest("a b x y", 0.7) is None
    assert index.scored == 1 and index.compared == 6


def test_only_the_candidates_rarest_words_are_looked_up():
    index = RougeIndex([f"the w{i}" for i in range(100)] + ["the cat sat down"])
    # "the cat sat up": m = 4, any item reaching 0.7 shares >= 0.7 * 4 / 1.3 = 2.15, so >= 3 tokens; its 4 - 3 + 1
    # = 2 first tokens in the order (rarest first: "cat", "sat", "up" were in no item when the order was built, ties
    # by word) are looked up, never "the" (in all 101): one item is looked at
    assert index.candidates("the cat sat up", 0.7) == [100] and index.probed == 1
    assert index.nearest("the cat sat up", 0.7) == (100, pytest.approx(0.75))  # LCS 3: F = 2*3/8


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 0.9])
def test_the_indexed_filter_rejects_exactly_what_brute_force_rejects(threshold):
    rng = random.Random(threshold)
    vocab = "what is the sum of two and three list sort a b".split()

    def text() -> str:
        return " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 9)))

    pool = [text() for _ in range(50)]
    index = RougeIndex(pool)
    for _ in range(60):
        cand = text()
        got, want = index.nearest(cand, threshold), brute_force_nearest(index.texts, cand, threshold)
        assert (got is None) == (want is None)
        if got is not None:
            assert got[0] == want[0] and got[1] == pytest.approx(want[1])
        if got is None and rng.random() < 0.5:  # the pool grows as candidates are accepted
            index.add(cand)
    assert index.scored < index.compared


def test_rouge_words_are_the_scorers_tokens():
    assert words("What's x_1, Ünïcode?") == ["what", "s", "x_1", "ünïcode"]
    assert rouge_l("a b c d", "a c d e") == pytest.approx(0.75)


# ---- Self-Instruct filters -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, reason", [
    ("What is 12 + 30?", None), ("", "empty"), ("two\nlines here.", "multiline"), ("What is", "too_short"),
    (" ".join(["word"] * 61) + ".", "too_long"), ("Draw a picture of a cat.", "keyword"),
    ("Describe the graphs here.", "keyword"), ("Describe the paragraph here.", None),
    ("``` some code here.", "starts_with_punctuation"), ("- list the items please.", "starts_with_punctuation"),
    ("→ add two and three.", "non_ascii_start"), ("Écris trois mots ici.", "non_ascii_start"),
    ("cut off by the token lim", "unfinished"),
])
def test_filter_reason_by_hand(text, reason):
    assert filter_reason(text, keywords=("picture", "graphs"), ascii_start=True) == reason


def test_a_non_ascii_letter_passes_without_ascii_start():
    assert filter_reason("Écris trois mots ici.") is None


def test_parse_input_and_the_prompt_it_makes():
    assert parse_input(" Input: [3, 1, 2]\nOutput: x") == "[3, 1, 2]"
    assert parse_input("none.") is None and parse_input("   ") is None
    assert with_input("Sort the list.", "[3, 1]") == "Sort the list.\nInput: [3, 1]"
    assert with_input("Sort the list.", None) == "Sort the list."


def test_self_instruct_lineage_records_every_candidate_and_its_decision():
    seeds = [lab_prompt(1, text="What is 10 + 20?"), lab_prompt(2, axis="harmless", text="How do I bake bread?")]
    counter = iter(range(1000))

    def reply(text, j):
        if text.endswith("\nInput:"):
            return " [1, 2]" if "times" in text else " none"
        k = next(counter)
        if text.endswith("How do"):
            return [" I bake bread?", " i BAKE bread!", " I draw a picture?"][k % 3]  # similar/duplicate/keyword
        return f" {k} times {k + 7} minus {3 * k}?"

    made = synthesize(chat_lm(reply), seeds, count=3, seed=0, keywords=("picture",), inputs=True)
    assert len(made.prompts) == 3
    assert all(p.text.startswith("What is ") and p.text.endswith("\nInput: [1, 2]") for p in made.prompts)
    kept = [r for r in made.lineage if r["decision"] == "kept"]
    assert [r["id"] for r in kept] == [p.id for p in made.prompts]
    assert all(r["operation"] == "generate+input" and r["input"] == "[1, 2]" for r in kept)
    for r in made.lineage:
        assert r["writer"] == "self_instruct" and r["parents"] and r["text"] is not None
        assert (r["decision"] == "kept") == (r["reason"] is None)
    rejected = [r for r in made.lineage if r["decision"] == "rejected"]
    assert {r["reason"] for r in rejected} <= {"duplicate", "similar", "keyword"}
    for r in rejected:
        if r["reason"] in ("duplicate", "similar"):
            assert r["nearest"]["id"] == "p2"
    stats = made.stats()
    assert stats["kept"] + sum(stats["rejected"].values()) == stats["candidates"] == len(made.lineage)
    assert stats["with_input"] == 3


def test_the_writer_returns_lineage_and_stats_for_the_stage():
    seeds = [lab_prompt(i, text=f"What is {i} + {i}?") for i in range(4)]
    tasks = iter([" the capital of Quellan called?", " a potter good at making?", " the colour of snow at noon?",
                  " seven sorted ascending here?"] * 5)
    writer = SelfInstructWriter(SelfInstructConfig(share=0.5))
    out, stats = writer(seeds, chat_lm(lambda t, j: next(tasks)), seed=0)
    assert len(out) == 4 and stats["written"] == 2 and stats["asked"] == 2
    assert [p.source for p in out] == ["lab", "lab", "self_instruct", "self_instruct"]
    assert len(stats["lineage"]) == stats["candidates"] == stats["kept"] + sum(stats["rejected"].values())


# ---- Evol-Instruct ---------------------------------------------------------------------------------------------
PARENT = "What is the length of the list [7, 8, 5, 1]?"


@pytest.mark.parametrize("text, reason", [
    ("", "empty"), ("what is the LENGTH of the list [7 8 5 1]", "unchanged"),
    ("Rewrite the given prompt: what is the length?", "copied_prompt"),
    ("What is the length of the list [7, 8, 5, 1]? Make sure", "malformed"),
    ("What is the length of the list [7, 8, 5, 1, 2]?", "similar"),
    ("What is the length of the list [7, 8, 5, 1]? Explain each step, then add one.", None),
])
def test_elimination_rules_by_hand(text, reason):
    assert elimination_reason(text, PARENT, similarity=0.9)[0] == reason


def test_similarity_is_rouge_l_with_the_parent():
    # parent 11 tokens (what is the length of the list 7 8 5 1), child 12 (one number more): LCS 11 -> F = 22/23
    reason, r = elimination_reason("What is the length of the list [7, 8, 5, 1, 2]?", PARENT, 0.9)
    assert reason == "similar" and r == pytest.approx(22 / 23)


@pytest.mark.parametrize("answer, reason", [
    ("", "unanswerable"), ("I can't help with that.", "unanswerable"), ("I don't know.", "unanswerable"),
    ("Four.", "short_answer"), ("The answer is 4.", None),
])
def test_answer_rules_by_hand(answer, reason):
    assert answer_reason(answer, min_answer_words=2) == reason
    assert answer_reason("I can't help with that.", refusals=False) is None


def test_operation_prompts_in_both_styles():
    asked, opening = operation_prompt("add_constraints", "Sort the list [3, 1].", None)
    assert "Prompt Rewriter" in asked[0]["content"] and "one more constraints" in asked[0]["content"]
    assert asked[0]["content"].rstrip().endswith("#Rewritten Prompt#:") and opening == ""
    assert "Prompt Creator" in operation_prompt("breadth", "Sort it.", None)[0][0]["content"]
    assert operation_prompt("deepen", "Sort the list.", "<u>") == ("<u>Sort the list. Also,", "Sort the list. Also,")
    assert operation_prompt("concretize", "a b c d e", "<u>")[1] == "a b c"
    assert operation_prompt("breadth", "a b c d e", "<u>", prefix_words=2)[1] == "a b"


def test_evolution_over_generations_keeps_lineage_and_returns_failed_parents_to_the_pool():
    roots = [lab_prompt(1, text="What is 2 + 3?"), lab_prompt(2, axis="honest", text="Who is Ann Lee?")]

    def reply(text, j):
        if "Make sure" in text:  # the evolution prompt continues here (prefix style)
            return " the answer is a whole number." if "2 + 3" in text else ""
        if text.startswith("What is 2 + 3"):
            return "The answer is 5."
        return "I don't know."

    cfg = EvolInstructConfig(rounds=2, operations=["add_constraints"])
    final, stats, lineage = evolve(chat_lm(reply), roots, seed=0, cfg=cfg)
    assert final[0].source == "evol_instruct" and final[0].axis == "helpful" and final[0].env is None
    assert final[1] == roots[1]  # every evolution of it failed: the root stays
    assert len(lineage) == 4 and stats["candidates"] == 4
    g1, g2 = [r for r in lineage if r["root"] == "p1"]
    assert g1["decision"] == "kept" and g1["parents"] == ["p1"] and g1["generation"] == 1
    assert g2["parents"] == [g1["id"]] and g2["generation"] == 2  # the second generation evolves the survivor
    assert final[0].id == (g2["id"] if g2["decision"] == "kept" else g1["id"])
    assert {r["reason"] for r in lineage if r["root"] == "p2"} == {"malformed"}
    assert stats["by_operation"] == {"add_constraints": {"tried": 4, "kept": stats["kept"]}}
    assert sum(stats["eliminated"].values()) + stats["kept"] == 4
    for r in lineage:
        assert {"writer", "generation", "operation", "parents", "root", "text", "decision", "reason"} <= set(r)


def test_evol_writer_replaces_the_last_share_and_keeps_the_count():
    prompts = [lab_prompt(i, text=f"What is {i} + {i}?") for i in range(4)]
    writer = EvolInstructWriter(EvolInstructConfig(share=0.5, rounds=1, operations=["breadth"]))
    counter = iter(range(100))
    out, stats = writer(prompts, chat_lm(lambda t, j: f" big is {next(counter)} times nine?" if t.startswith("<|user|>")
                                         else "The answer is 9."), seed=1)
    assert len(out) == 4 and out[:2] == prompts[:2] and stats["asked"] == 2
    assert stats["written"] == sum(p.source == "evol_instruct" for p in out) == 2
    assert len(stats["lineage"]) == 2


def test_a_wrong_writer_field_is_one_line():
    with pytest.raises(UserError, match=r"prompts\.writers\.0\.evol_instruct\.operations"):
        load_recipe(ROOT / "recipes" / "evol_instruct.yaml", ["prompts.writers.0.operations=[shrink]"])


# ---- back-translation ------------------------------------------------------------------------------------------
def test_texts_become_responses():
    assert as_response("<|user|>\nHow?<|end|>\n<|assistant|>\nLike this.<|end|>\n") == "Like this."
    assert as_response("Ann Lee is a potter.<|end|>\n") == "Ann Lee is a potter."
    assert parse_instruction("\nRequest: Who is Ann Lee?\nmore") == "Who is Ann Lee?"
    assert parse_instruction("  ") == ""


def test_the_curation_rule_by_hand():
    scores = [0.9, None, 0.4, 0.7, 0.9, 0.5]
    assert curate(scores, 0.5) == [True, False, False, True, True, True]
    # top half of the 5 scored pairs: ceil(2.5) = 3 best -> 0.9, 0.9, 0.7
    assert curate(scores, 0.5, top_fraction=0.5) == [True, False, False, True, True, False]
    assert curate(scores, 1.0) == [False] * 6


def test_backtranslation_keeps_the_pairs_the_judge_passes(tmp_path):
    texts = tmp_path / "texts.jsonl"
    texts.write_text("\n".join(json.dumps({"text": t}) for t in [
        "Ann Lee is a potter from Quellan.", "<|user|>\nWhat is 2 + 3?<|end|>\n<|assistant|>\nThe answer is 5.<|end|>",
        "Yes", "Ann Lee is a potter from Quellan."]))

    def backward(text, j):
        return "Request: What does Ann Lee do?" if "potter" in text else "Tell me a number."

    def judge(prompt, cont):  # P(Yes) 0.8 for the potter pair, 0.2 otherwise
        p = 0.8 if "What does Ann Lee do?" in prompt else 0.2
        return __import__("math").log(p if cont == "Yes" else 1 - p)

    sig = Backtranslation(source="file", path=str(texts), count=10, judge="fake:judge", threshold=0.5,
                          load_lm=lambda uri: FakeLM(score=judge, uri=uri))
    ctx = StageContext(dir=tmp_path / "sig", round=1, seed=3)
    res = sig([], [], FakeLM(reply=backward, uri="fake:policy"), ctx)
    assert [e.messages for e in res.sft] == [[{"role": "user", "content": "What does Ann Lee do?"},
                                              {"role": "assistant", "content": "Ann Lee is a potter from Quellan."}]]
    assert res.stats["dropped"] == {"too_short": 1, "too_long": 0, "repeat": 1}
    assert res.stats["curation"] == {"kept": 1, "low_score": 1, "unscored": 0, "no_instruction": 0}
    rows = [json.loads(x) for x in (tmp_path / "sig" / "curation.jsonl").read_text().splitlines()]
    assert sorted(r["decision"] for r in rows) == ["kept", "low_score"]
    assert [r["score"] for r in rows if r["decision"] == "kept"] == [pytest.approx(0.8)]


def test_seed_pairs_ask_each_prompts_first_answer_back_to_the_prompt():
    p1, p2 = lab_prompt(1), lab_prompt(2)
    samples = [Sample(prompt_id="p1", index=1, text="The answer is 2.", model="m"),
               Sample(prompt_id="p1", index=0, text=" ", model="m"),
               Sample(prompt_id="p2", index=0, text="", model="m"), Sample(prompt_id="p9", index=0, text="x", model="m")]
    assert seed_pairs([p1, p2], samples) == [{"messages": [
        {"role": "user", "content": BACKWARD_PROMPT.format(response="The answer is 2.")},
        {"role": "assistant", "content": "What is 1 + 1?"}]}]


def test_backtranslation_mistakes_are_one_line(tmp_path):
    assert catalog.SIGNALS["backtranslation"] == ("autoalign.signals.imitation.backtranslation", "Backtranslation")
    with pytest.raises(UserError, match="file not found"):
        catalog.build_signal("backtranslation", {"source": "file", "path": str(tmp_path / "none.jsonl")})
    with pytest.raises(UserError, match="source must be one of"):
        catalog.build_signal("backtranslation", {"source": "web"})
    with pytest.raises(UserError, match="principle"):
        catalog.build_signal("backtranslation", {"principle": "kind"})


# ---- the recipes, one round on lab:tiny --------------------------------------------------------------------------
TINY = ["policy=lab:tiny", "rounds=1", "prompts.count=12", "sampling.n=2", "sampling.max_new_tokens=16",
        "eval.per_family=1", "eval.max_new_tokens=16", "train.epochs=1", "train.batch_size=8"]
SHRINK = {
    "self_instruct": ["signals.0.params.judge=lab:tiny", "signals.0.params.noise_floor=0.0",
                      "prompts.writers.0.max_new_tokens=16", "prompts.writers.0.input_max_new_tokens=8"],
    "evol_instruct": ["signals.0.params.judge=lab:tiny", "signals.0.params.noise_floor=0.0",
                      "prompts.writers.0.max_new_tokens=16", "prompts.writers.0.answer_max_new_tokens=8"],
    "backtranslation": ["signals.0.params.judge=lab:tiny", "signals.0.params.count=12",
                        "signals.0.params.max_new_tokens=16", "signals.0.params.threshold=0.0"],
}


@pytest.mark.parametrize("name", list(SHRINK))
def test_recipe_one_round_end_to_end_on_lab_tiny(name, tiny_model_dir, tmp_path):
    from tests.e2e.test_run import AUTOALIGN

    assert load_recipe(ROOT / "recipes" / f"{name}.yaml").policy == "lab:small"
    over = [*TINY, *SHRINK[name], f"run_dir={tmp_path / 'runs'}", f"name={name}"]
    res = subprocess.run([AUTOALIGN, "run", str(ROOT / "recipes" / f"{name}.yaml"), *over], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "runs" / name
    metrics = json.loads((run / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [0, 1] and (run / "report.html").exists()
    for rnd in metrics["rounds"]:
        m = {x["suite"]: x for x in rnd["results"]}["lab"]["metrics"]["composite"]
        assert 0.0 <= m["lo"] <= m["value"] <= m["hi"] <= 1.0
    prompts_dir = run / "round-1" / "prompts"
    if name == "backtranslation":
        stats = json.loads((run / "round-1" / "signals" / "manifest.json").read_text())["stats"]["backtranslation"]
        assert stats["sft"] > 0 and (run / "round-1" / "signals" / "0" / "curation.jsonl").exists()
        assert stats["backward_seed_pairs"] > 0 and (run / "round-1" / "signals" / "0" / "backward_model").is_dir()
    else:
        writers = json.loads((prompts_dir / "manifest.json").read_text())["writers"]
        stats = writers[f"0:{name}"]
        lineage = [json.loads(x) for x in (prompts_dir / "lineage.jsonl").read_text().splitlines()]
        assert len(lineage) == stats["candidates"] > 0 and stats["written"] > 0
        written = {json.loads(x)["id"] for x in (prompts_dir / "prompts.jsonl").read_text().splitlines()
                   if json.loads(x)["source"] == name}
        assert written <= {r.get("id") for r in lineage if r["decision"] == "kept"}
    assert json.loads((run / "round-1" / "train" / "manifest.json").read_text())["metrics"]["trained"]
