"""lst-lightning: a PyTorch Lightning kit for the Latent Speech-Text Transformer (arXiv 2510.06195).

Layers, one way: ``model`` (plain PyTorch) <- ``data`` (no Lightning) <- ``lit`` / ``callbacks`` / ``cli``.
"""

__version__ = "0.1.0"
