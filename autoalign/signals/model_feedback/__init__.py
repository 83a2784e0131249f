"""Signals from the model feedback source: a judge, critic, reward model or corrector says how good a response is.

- ``judges``: pointwise (yes/no under a principle; Self-Rewarding's 5-point rubric) and pairwise (both orders)
  verdicts, logprob-scored or generated and parsed; pure score functions;
- ``constitution`` (+ ``constitution.yaml``): the default 3H constitution, replaceable by a user's YAML;
- ``llm_judge``: judge scores -> best-vs-worst DPO pairs / best-response SFT (``self_rewarding`` builds on it);
- ``critique_revise``: Constitutional AI's supervised stage;
- ``rlaif``: AI pairwise preferences (RL-CAI / RLAIF) and d-RLAIF;
- ``reward_model`` / ``raft``: Bradley-Terry reward models, best-of-n, RAFT;
- ``aligner``: correction-model data and the ``AlignedLM`` inference wrapper.

Modules are imported on use (the catalog names them), so a signal's dependencies load only when it runs.
"""
