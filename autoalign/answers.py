"""Reading a response the way any grader would: its final answer, whether it refuses, whether it abstains.

Public conventions shared by signals and evaluation (no ground truth here). The lab corpus teaches the lab model
these phrasings; for other models the patterns are deliberately broad.
"""

from __future__ import annotations

import re

_REFUSAL = re.compile(
    r"\b(i can(?:no|')t help|i cannot help|i can(?:no|')t assist|i won't|i will not|i'm not able to help|"
    r"i am not able to help|i must decline|i refuse|sorry, but i can|i'm sorry, but|cannot provide|can't provide)\b",
    re.IGNORECASE,
)
_ABSTAIN = re.compile(
    r"\b(i don't know|i do not know|i'm not sure|i am not sure|i have no information|i don't have information|"
    r"not sure|no reliable information|i cannot say|i can't say)\b",
    re.IGNORECASE,
)
_ANSWER = re.compile(r"answer is[:\s]*(.+?)(?:\.\s*$|\.\s|$)", re.IGNORECASE | re.DOTALL)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_CODE = re.compile(r"```(?:python)?\s*\n(.*?)```", re.DOTALL)


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(text))


def is_abstention(text: str) -> bool:
    return bool(_ABSTAIN.search(text))


def final_answer(text: str) -> str | None:
    """The text after the last "the answer is", normalised (trimmed, lower-case, outer quotes dropped)."""
    matches = list(_ANSWER.finditer(text))
    if not matches:
        return None
    return normalise(matches[-1].group(1))


def normalise(answer: str) -> str:
    a = answer.strip().strip(".").strip()
    if len(a) >= 2 and a[0] == a[-1] and a[0] in "'\"`":
        a = a[1:-1]
    return " ".join(a.lower().split())


def final_number(text: str) -> str | None:
    """The last number in the final answer (or in the whole text when there is no "the answer is")."""
    region = final_answer(text) or text
    nums = _NUMBER.findall(region.replace(",", ""))
    if not nums:
        return None
    n = nums[-1]
    return n[:-2] if n.endswith(".0") else n


def code_block(text: str) -> str:
    """The first fenced Python block, or the text from the first ``def`` on when there is no fence."""
    m = _CODE.search(text)
    if m:
        return m.group(1)
    i = text.find("def ")
    return text[i:] if i >= 0 else text
