"""Language-model providers behind one protocol (see ``base``). ``registry.load_lm`` picks one by URI.

This package's ``__init__`` imports nothing on purpose: signals import ``autoalign.models.base`` for the protocol
without pulling in torch, transformers or the lab.
"""
