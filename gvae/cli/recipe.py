"""``gvae recipe show``: print a recipe as training will see it."""

import click

from gvae.budget import describe
from gvae.config import load_recipe


@click.group()
def recipe() -> None:
    """Inspect recipes (YAML files under recipes/)."""


@recipe.command("show")
@click.argument("recipe_path", metavar="RECIPE", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
def show(recipe_path: str, overrides: tuple[str, ...]) -> None:
    """Print the fully resolved RECIPE (extends merged, overrides applied, validated) as YAML.

    Schedules given as fractions of train.max_steps (loss.kl_warmup_fraction, train.ema_halflife) are
    resolved in closing comments: the KL warm-up in steps, the EMA decay per step, and the initial weights'
    share of the EMA at the end of the run.

    \b
    Examples:
      gvae recipe show recipes/fmnist-32-gvae.yaml
      gvae recipe show recipes/phantom-64-gvae.yaml train.max_steps=20 model.latent_dim=64
    """
    recipe = load_recipe(recipe_path, overrides)
    click.echo(recipe.to_yaml(), nl=False)
    click.echo("".join(f"# {line}\n" for line in describe(recipe)), nl=False)


COMMANDS = [recipe]
