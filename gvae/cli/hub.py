"""``gvae export`` (a Hub-ready folder of a trained model) and ``gvae push`` (that folder, uploaded)."""

import click

_RESULTS_HELP = "The model's `gvae eval` results for the model card [default: RUN/results.json, if any]."


@click.command("export")
@click.argument("source", metavar="RUN_OR_CHECKPOINT")
@click.argument("out", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--results", type=click.Path(dir_okay=False), default=None, help=_RESULTS_HELP)
@click.option("--repo-id", default="OWNER/NAME", show_default=True,
              help="The Hub repository the model card's usage lines name.")
def export(source: str, out: str, results: str | None, repo_id: str) -> None:
    """Write a trained model as a self-contained folder, ready for the Hugging Face Hub.

    DIR gets the safetensors weights (live and EMA), config.yaml (the resolved recipe), gvae.json (version,
    step, class names, sha256 of the weights), results.json, the newest sample grid as samples.png, and a
    model card README.md: data, recipe, metrics, the memorisation figure, intended use and limits. DIR is a
    checkpoint itself: gvae generate DIR and gvae.load(DIR) read it. It must be new or empty.

    \b
    Examples:
      gvae export runs/phantom models/phantom-gvae
      gvae export runs/phantom/checkpoints/step-00001000 models/phantom-1k --results eval/phantom.json
    """
    from gvae.export import export as export_model

    click.echo(f"exported to {export_model(source, out, results=results, repo_id=repo_id)}", err=True)


@click.command("push")
@click.argument("source", metavar="RUN_OR_CHECKPOINT")
@click.argument("repo_id", metavar="OWNER/NAME")
@click.option("--private", is_flag=True, help="Create the repository as private (if it does not exist).")
@click.option("--results", type=click.Path(dir_okay=False), default=None, help=_RESULTS_HELP)
@click.option("--message", default=None, help="Commit message [default: gvae push RUN].")
def push(source: str, repo_id: str, private: bool, results: str | None, message: str | None) -> None:
    """Upload a trained model to the Hugging Face Hub as OWNER/NAME (the folder of gvae export).

    Log in first (`hf auth login`, or set HF_TOKEN). Anyone can then use it wherever gvae takes a run:
    gvae generate hf://OWNER/NAME ..., gvae eval hf://OWNER/NAME ..., gvae.load("hf://OWNER/NAME"); add
    @REVISION for a branch, tag or commit. Only safetensors weights and the recipe are downloaded to load it.

    \b
    Examples:
      gvae push runs/phantom alice/phantom-gvae
      gvae generate hf://alice/phantom-gvae --num 1000 --out aug/phantom
    """
    from gvae.hub import push as push_model

    click.echo(push_model(source, repo_id, private=private, results=results, message=message))


COMMANDS = [export, push]
