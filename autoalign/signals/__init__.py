"""Alignment signals, filed by source (DESIGN.md): inductive/, imitation/, model_feedback/, environment/.

Every signal has one shape (``base.Signal``): prompts + samples in, feedback records out. A signal never reads the
lab's ground truth; an import-linter contract (tests/core/test_import_contract.py) fails if any module here imports
``autoalign.lab`` or ``autoalign.evaluate``.
"""
