"""``gvae recipe show``: print a recipe as training will see it."""

import click

from gvae.config import load_recipe


@click.group()
def recipe() -> None:
    """Inspect recipes (YAML files under recipes/)."""


@recipe.command("show")
@click.argument("recipe_path", metavar="RECIPE", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
def show(recipe_path: str, overrides: tuple[str, ...]) -> None:
    """Print the fully resolved RECIPE (extends merged, overrides applied, validated) as YAML.

    \b
    Examples:
      gvae recipe show recipes/fmnist-32-gvae.yaml
      gvae recipe show recipes/phantom-64-gvae.yaml train.max_steps=20 model.latent_dim=64
    """
    click.echo(load_recipe(recipe_path, overrides).to_yaml(), nl=False)


COMMANDS = [recipe]
