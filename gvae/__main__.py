"""``python -m gvae`` (and ``accelerate launch -m gvae ...``) runs the CLI."""

from gvae.cli import main

if __name__ == "__main__":
    main()
