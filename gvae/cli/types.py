"""Click parameter types shared by the commands."""

from __future__ import annotations

import math

import click


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange that also refuses NaN and infinity, which compare False against every bound and
    would otherwise pass (``--temperature nan`` gave black images, ``--max-bad-fraction nan`` no check)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class TemperatureOrChosen(FiniteFloatRange):
    """A sampling temperature >= 0, or "chosen": the one gvae eval temperature chose for the run's weights."""

    name = "temperature"

    def __init__(self):
        super().__init__(0)

    def convert(self, value, param, ctx):
        from gvae.temperature_choice import CHOSEN

        if value == CHOSEN:
            return CHOSEN
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            self.fail(f"{value!r}: give a finite number >= 0, or {CHOSEN!r} for the run's chosen one", param, ctx)

    def get_metavar(self, param, ctx=None):
        return "T|chosen"
