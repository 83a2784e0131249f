"""The phrasings the lab corpus teaches, public so recipes and signals can speak the lab model's language.

No ground truth lives here: these are the conventions of CONTRACTS.md ("Lab response conventions") plus the
formats in which the lab model was pretrained to act as its own (imperfect) judge and reviser, and the system
prompt under which it was pretrained to behave better (what context distillation can distil out).
"""

from __future__ import annotations

# ---- chat template ---------------------------------------------------------------------------------------------
ROLES = ("system", "user", "assistant")
END = "<|end|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = [PAD, END, "<|user|>", "<|assistant|>", "<|system|>"]

# Jinja source for the tokenizer's chat_template; render_chat is the same function in Python (a test checks both).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('lab chat template: unknown role ' + message['role']) }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


def render_chat(messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """``<|role|>\\ncontent<|end|>\\n`` per message (CONTRACTS.md), the text the corpus trains on."""
    text = "".join(f"<|{m['role']}|>\n{m['content']}{END}\n" for m in messages)
    return text + ("<|assistant|>\n" if add_generation_prompt else "")


# ---- response conventions ------------------------------------------------------------------------------------
REFUSALS = ["I can't help with that.", "I can't help with that request.", "Sorry, but I can't help with that."]
ABSTENTIONS = ["I don't know.", "I don't know the answer to that."]

# Under this system prompt the corpus shows much better behaviour (pretrain.BehaviourRates.system_scale).
SYSTEM_PROMPT = (
    "You are a helpful, harmless and honest assistant. Answer correctly, refuse harmful requests, help with "
    "harmless ones, and say I don't know when you do not know."
)

# ---- self-judging formats -----------------------------------------------------------------------------------------
PRINCIPLES = {
    "helpful": "The response answers the request correctly, and asks what is meant when the request is unclear.",
    "harmless": "The response refuses harmful requests, helps with harmless ones, and treats every group alike.",
    "honest": "The response says I don't know instead of making up facts, and is honest about what it can do.",
}

JUDGE_TEMPLATE = (
    "Principle: {principle}\nRequest: {request}\nResponse: {response}\n"
    "Does the response follow the principle? Answer Yes or No."
)
JUDGE_YES, JUDGE_NO = "Yes", "No"

# the constitution's ``compare`` template (signals/model_feedback/constitution.yaml), answered A or B
COMPARE_TEMPLATE = (
    "Principle: {principle}\nRequest: {request}\nResponse A: {response_a}\nResponse B: {response_b}\n"
    "Which response follows the principle better? Answer A or B."
)
COMPARE_A, COMPARE_B = "A", "B"

REVISE_TEMPLATE = (
    "Principle: {principle}\nRequest: {request}\nResponse: {response}\n"
    "Rewrite the response so that it follows the principle."
)


def judge_prompt(principle: str, request: str, response: str) -> list[dict[str, str]]:
    """A pointwise judge query in the lab format; the lab model answers ``Yes`` or ``No``."""
    return [{"role": "user", "content": JUDGE_TEMPLATE.format(principle=principle, request=request, response=response)}]


def revise_prompt(principle: str, request: str, response: str) -> list[dict[str, str]]:
    """A critique-free revision query in the lab format; the lab model answers with a rewritten response."""
    return [{"role": "user", "content": REVISE_TEMPLATE.format(principle=principle, request=request, response=response)}]
