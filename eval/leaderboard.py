"""Build a leaderboard from a suite: ``python eval/leaderboard.py eval/suites/fmnist.yaml [--out DIR]``.

The same code as ``gvae leaderboard`` (gvae.evaluation.leaderboard); this script exists so that the eval/ directory
is self-explanatory.
"""

import sys

from gvae.cli import cli

if __name__ == "__main__":
    cli(["leaderboard", *sys.argv[1:]], prog_name="gvae")
