"""Signals from many models at once (arXiv 2406.01252, "society" of agents): a signal no single model gives.

- ``debate``: two debaters argue for two candidate answers over a few rounds and a weaker judge reads the
  transcript (Irving et al. 2018; Khan et al. 2024); its verdicts become preference pairs;
- ``collective_constitution``: a simulated population proposes and votes on principles, aggregated by bridging
  consensus (Collective Constitutional AI, Huang et al. 2024); the top principles become a constitution that
  Constitutional AI trains with;
- ``society``: a simulated society of agents who rate, criticise and revise (Stable Alignment, Liu et al. 2024).

Modules are imported on use (the catalog names them), so a signal's dependencies load only when it runs.
"""
