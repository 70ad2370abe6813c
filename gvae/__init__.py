"""gvae: train a GAN-VAE hybrid, mass-generate augmentation sets, and measure them honestly."""

from gvae.errors import GvaeError

__version__ = "0.1.0"


def load(run_or_checkpoint, ema: bool = True, device="cpu"):
    """Load a trained model (eval mode) from a run directory, a checkpoint directory, an exported folder, or the
    Hugging Face Hub as ``"hf://OWNER/NAME"`` (``@REVISION`` optional; downloaded once into huggingface_hub's cache).

    A run directory resolves to its newest complete checkpoint. ``ema=True`` loads the exponential moving
    average of the weights, which is what samples, generation and evaluation use.
    """
    from gvae.loading import load_trained

    return load_trained(run_or_checkpoint, ema=ema, device=device).model


__all__ = ["GvaeError", "load", "__version__"]
