"""Evaluation: everything that turns trained models and generated sets into results.json files and tables.

  registry.py     every metric of ``gvae eval``, registered where its results.json entries are made;
                  ``--metrics`` parsing and the command line's metric help come from it
  protocol.py     Protocol: how a model is evaluated, recorded in every results.json
  runner.py       evaluate() (blocks, random streams, ranks) and run_evaluation() (load, read data, skip what
                  cannot run): ``gvae eval``
  results.py      results.json: the printed table and the atomic writer
  utility.py      the images of the utility metrics, and ``gvae eval utility`` for a set on disk
  leaderboard.py  suites of runs under one protocol: cache, aggregation, Markdown, CSV, bar charts:
                  ``gvae leaderboard``

The numerics are pure functions of tensors in :mod:`gvae.metrics`, below every other package: training's
losses, generation's filters and the colorizer use them too. This package imports nothing on import, so that
the command line can read the registry without loading the rest: import the module you need.
"""
