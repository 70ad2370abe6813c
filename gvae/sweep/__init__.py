"""Hyper-parameter sweeps: a grid (or list) of recipe overrides x seeds, run resumably, ranked and summarised.

:mod:`gvae.sweep.spec` reads a sweep file into runs, :mod:`gvae.sweep.runner` trains, evaluates and records each
run (skipping finished ones), and :mod:`gvae.sweep.summary` writes the table, the best run and the importance
of each parameter.
"""

from gvae.sweep.runner import commands, is_finished, run_one, run_sweep, slurm_script
from gvae.sweep.spec import RunSpec, Sweep, load_sweep
from gvae.sweep.summary import importance, write_summary

__all__ = ["RunSpec", "Sweep", "commands", "importance", "is_finished", "load_sweep", "run_one", "run_sweep",
           "slurm_script", "write_summary"]
