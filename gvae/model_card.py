"""The model card (README.md) of an exported model: what it was trained on, how, how well, and how not to use it.

It states the memorisation figure, or that it was not measured, on purpose: whoever augments medical data
with these samples must know whether they copy patients.
"""

from __future__ import annotations

from typing import Any

MEMORIZATION = "memorization"


def _front_matter(recipe) -> str:
    tags = ["gvae", "image-generation", "data-augmentation", "vae", "gan", recipe.model.kind]
    lines = ["---", "library_name: gvae", "license: other", "tags:", *(f"- {t}" for t in dict.fromkeys(tags)), "---"]
    return "\n".join(lines)


def _usage(repo_id: str, temperature: float | None) -> str:
    chosen = "" if temperature is None else (
        f"\n\n`gvae generate` samples the prior at temperature {temperature:g}, chosen after training by `gvae eval "
        "temperature` (`temperature.json`); `--temperature 1` gives the prior the model was trained with, "
        "`model.sample(..., temperature=T)` any other.")
    return f"""## Use

With gvae installed:

```bash
gvae generate hf://{repo_id} --num 10000 --out aug/samples      # WebDataset shards + manifest.json
gvae eval hf://{repo_id} --data YOUR_HELD_OUT_DATA --out results.json
```

```python
import torch, gvae
model = gvae.load("hf://{repo_id}")                # EMA weights, eval mode; safetensors only, nothing unpickled
images = model.sample(16, torch.Generator().manual_seed(0))   # [16, C, H, W] in [0, 1]
```{chosen}"""


def _data(recipe, class_names: list[str] | None) -> str:
    d = recipe.data
    lines = ["## Data", "", f"- training data: `{d.train or 'not recorded'}`"]
    if d.val:
        lines.append(f"- held-out data during training: `{d.val}`")
    lines.append(f"- images: {d.resolution} x {d.resolution} px, {d.channels} channel{'s' if d.channels > 1 else ''}")
    if class_names:
        lines.append(f"- classes ({len(class_names)}): {', '.join(class_names)}")
    return "\n".join(lines)


def _recipe(model, metadata: dict[str, Any]) -> str:
    r = model.recipe
    counts = model.param_counts()
    step = metadata.get("step")
    return f"""## Recipe

A `{r.model.kind}` model with a {r.model.latent_dim}-dimensional latent space and {counts['total']:,} parameters
(encoder {counts['encoder']:,}, generator {counts['generator']:,}, discriminator {counts['discriminator']:,}),
trained for {step if step is not None else 'an unrecorded number of'} steps of {r.train.batch_size} images per
process with gvae {metadata['gvae_version']}. The whole resolved recipe is `config.yaml`:

```yaml
{r.to_yaml().rstrip()}
```"""


def _metrics(results: dict[str, Any] | None) -> str:
    if not results or not results.get("metrics"):
        return "## Metrics\n\nNot evaluated: no results.json was exported with this model."
    rows = ["| metric | value | ± | n | unit | better |", "|---|---|---|---|---|---|"]
    for name, entry in results["metrics"].items():
        std = "" if entry.get("std") is None else f"{entry['std']:.4g}"
        rows.append(f"| {name} | {entry['value']:.6g} | {std} | {entry.get('n', '')} | {entry.get('unit', '')} "
                    f"| {entry.get('better', '')} |")
    skipped = results.get("skipped") or {}
    tail = [f"\nNot computed: {', '.join(sorted(skipped))}."] if skipped else []
    source = f"From `results.json` (`gvae eval` on held-out data `{results.get('data')}`):\n"
    return "\n".join(["## Metrics", "", source, *rows, *tail])


def _memorization(results: dict[str, Any] | None) -> str:
    entry = ((results or {}).get("metrics") or {}).get(MEMORIZATION)
    head = "## Memorisation\n\n"
    if entry is None:
        return head + ("**Not measured.** Nothing here says whether samples reproduce training images. Measure it "
                       "before using the samples where training images are private (patients):\n"
                       "`gvae eval RUN --data DATA --metrics memorization`, or filter while generating with "
                       "`--max-memorization D --train-data DATA`.")
    return head + (f"**{entry['value']:.3g}** of {entry.get('n', '?')} samples lie nearer to a training image than "
                   "the closest 1% of held-out images do (about 0.01 for a model that generalises, towards 1 "
                   "for one that replays its training set). A sample can still resemble one training image; "
                   "`gvae generate --max-memorization D --train-data DATA` drops samples closer than D.")


INTENDED_USE = """## Intended use

Synthetic training images for augmenting classifiers and segmenters of the same domain, resolution and
channel count as the training data, and research on generative models."""

LIMITS = """## Limits

- It knows only its training data: other scanners, populations, protocols or resolutions are out of its domain.
- Samples are not observations. They must not be used for diagnosis or as evidence about any individual.
- Small or rare structures (lesions, thin lines) are the first to be lost or blurred; check that your classes
  survive before relying on them.
- The metrics above compare only with results made by the same protocol and feature weights."""


def model_card(model, metadata: dict[str, Any], results: dict[str, Any] | None, repo_id: str,
               has_samples: bool, temperature: float | None = None) -> str:
    """The README.md of an exported model (Hugging Face model card: YAML front matter, then Markdown);
    ``temperature``: the sampling temperature chosen for its weights, if any."""
    r = model.recipe
    opponent = " trained against a discriminator" if model.has_discriminator else ""
    intro = (f"# {r.name}\n\nA `{r.model.kind}` model of {r.data.resolution} px images trained with gvae: "
             f"an encoder q(z|x) and a generator p(x|z){opponent}, used to generate synthetic training images.")
    parts = [_front_matter(r), intro]
    if has_samples:
        parts.append("![Samples](samples.png)\n\n*Prior samples, then held-out images over their reconstructions "
                     "(EMA weights), from the last sample grid of training.*")
    parts += [_usage(repo_id, temperature), _data(r, metadata.get("class_names")), _recipe(model, metadata),
              _metrics(results), _memorization(results), INTENDED_USE, LIMITS]
    return "\n\n".join(parts) + "\n"
