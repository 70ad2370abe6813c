"""Mass generation, the library side of ``gvae generate``; the implementation lives in :mod:`gvae.generation`.

    from gvae.generate import GenerateConfig, generate
    manifest = generate(GenerateConfig(source="runs/phantom", out="aug/phantom", num=10_000))
"""

from gvae.generation import BLOCK, GenerateConfig, generate

__all__ = ["BLOCK", "GenerateConfig", "generate"]
