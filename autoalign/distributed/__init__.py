"""Spreading work over machines with an existing engine (Ray), never a home-made one. Optional extra: ``ray``.

``ray_shard.RayShardedLM`` shards generation, scoring and any callable over prompts (a judge, a verifier) across
Ray actors that each hold a model replica built from the model URI. Nothing here is imported by default.
"""
