"""The embedded lab world (DESIGN.md, "The lab"): procedurally generated 3H tasks with ground truth, a corpus that
mixes good and bad behaviour at configured rates, a locally trained byte-level BPE tokenizer, and small Llama-style
base models pretrained on CPU in minutes.

- ``world``: the task families and the knowledge base (ground truth; read by the corpus and the oracle only);
- ``prompts``: ``lab_prompts`` -- what a run may show the policy (no answers);
- ``formats``: the chat template, response conventions, system prompt and self-judging formats the corpus teaches;
- ``corpus`` / ``tokenizer`` / ``pretrain``: building ``lab:tiny`` and ``lab:small`` (``ensure_lab_model``);
- ``oracle``: eval-split items and grading, importable only by ``autoalign.evaluate``.
"""
