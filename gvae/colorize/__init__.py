"""Grey to colour: a model that predicts the chrominance (I, Q of YIQ) of an image from its luminance Y.

:mod:`gvae.colorize.yiq` converts between RGB and YIQ, :mod:`gvae.colorize.model` is the network,
:mod:`gvae.colorize.train` trains it (``gvae train`` with ``model.kind: colorize``), and
:mod:`gvae.colorize.apply` colorizes images and scores them against the I = Q = 0 baseline (``gvae colorize``).
"""
