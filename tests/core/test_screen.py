"""The training-data screen's decisions on hand-made rows."""

from autoalign.records import Preference, SFTExample
from autoalign.screen import ScreenConfig, has_pii, screen

Q = [{"role": "user", "content": "What is 2 + 2?"}]


def sft(text: str, pid: str = "p", q=Q) -> SFTExample:
    return SFTExample(prompt_id=pid, messages=[*q, {"role": "assistant", "content": text}], signal="s")


def pref(chosen: str, rejected: str, pid: str = "p") -> Preference:
    return Preference(prompt_id=pid, prompt=Q, chosen=chosen, rejected=rejected, signal="s")


def test_each_rule_drops_what_it_names():
    rows = [sft("The answer is 4."),
            sft("the answer is 4"),  # the same target, up to case and punctuation
            sft("The answer is 4.", q=[{"role": "user", "content": "What is 1 + 3?"}]),  # another prompt: kept
            sft(""),
            sft("x" * 5000),
            sft("Mail me at jo.doe@example.com."),
            sft("You are a pathetic loser."),
            sft("I can't help with that.")]
    out = screen(rows, [], ScreenConfig())
    assert [e.messages[-1]["content"] for e in out.sft] == ["The answer is 4.", "The answer is 4.",
                                                            "I can't help with that."]
    assert out.counts["sft"] == {"kept": 3, "duplicate": 1, "empty": 1, "too_long": 1, "pii": 1, "toxic": 1,
                                 "kept_refusals": 1}
    assert [d["reason"] for d in out.dropped] == ["duplicate", "empty", "too_long", "pii", "toxic"]


def test_preferences_and_switches():
    prefs = [pref("The answer is 4.", "The answer is 5."),
             pref("The answer is 4.", "the answer is 4!"),  # identical up to punctuation: teaches nothing
             pref("The answer is 4.", "The answer is 5."),  # a duplicate pair
             pref("Call 555-123-4567 for help.", "The answer is 5.")]
    out = screen([], prefs, ScreenConfig())
    assert len(out.preferences) == 1
    assert out.counts["preferences"] == {"kept": 1, "identical_pair": 1, "duplicate": 1, "pii": 1}
    refusals = screen([sft("I can't help with that.")], [], ScreenConfig(refusals="drop"))
    assert refusals.sft == [] and refusals.counts["sft"] == {"kept": 0, "refusal": 1}
    off = screen([sft(""), sft("")], prefs, ScreenConfig(enabled=False))
    assert len(off.sft) == 2 and len(off.preferences) == 4 and off.dropped == []


def test_pii_patterns():
    assert has_pii("ssn 123-45-6789") and has_pii("card 4111 1111 1111 1111") and has_pii("a@b.io")
    assert not has_pii("The answer is 1234.") and not has_pii("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]")
