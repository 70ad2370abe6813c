"""``gvae report``: one self-contained HTML page that shows what a run learnt.

    from gvae.report import write_report
    path = write_report("runs/phantom")            # -> runs/phantom/report.html

The page holds the resolved recipe, the training curves and diagnostics of metrics.jsonl, the latest sample grid,
reconstructions of held-out images next to their originals, a latent interpolation between two held-out
images, a scatter of the held-out images' latent codes coloured by label, the eval results (results.json) and
the manifest and a preview of a generated set. A part whose inputs are missing (no checkpoint yet, data moved,
never evaluated) says so in place instead of failing the page: a report is most useful on a run that went
wrong.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image

from gvae.errors import GvaeError
from gvae.fileio import read_json, write_text_atomic
from gvae.report import figures, views
from gvae.report.page import Section, figure, note, preformatted, render, table

log = logging.getLogger(__name__)

RESULTS = "results.json"
MANIFEST = "manifest.json"


def _read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a killed run
            log.warning("%s: skipped a line that is not JSON", path)
    return records


def find_results(run_dir: Path) -> Path | None:
    """results.json in the run directory, if ``gvae eval`` wrote one there."""
    path = run_dir / RESULTS
    return path if path.is_file() else None


def find_manifest(run_dir: Path) -> Path | None:
    """manifest.json of a generated set inside the run directory (at its top or one folder down), if any."""
    found = sorted([run_dir / MANIFEST, *run_dir.glob(f"*/{MANIFEST}")], key=str)
    return next((path for path in found if path.is_file()), None)


# ---------------------------------------------------------------- sections from files
def _run_section(run_dir: Path, records: list[dict], checkpoint: str | None) -> Section:
    info = read_json(run_dir / "run.json", "run description") if (run_dir / "run.json").is_file() else {}
    rows: list[list[object]] = [["run directory", str(run_dir.resolve())], ["checkpoint", checkpoint or "none yet"]]
    if records:
        rows.append(["last logged step", records[-1].get("step")])
    keys = ("device", "distributed_type", "world_size", "global_batch_size", "mixed_precision", "deepspeed_zero_stage")
    rows += [[key.replace("_", " "), info[key]] for key in keys if info.get(key) is not None]
    rows += [[f"{name} version", version] for name, version in info.get("versions", {}).items()]
    body = table(["", ""], rows)
    if info.get("command"):
        body += preformatted(info["command"])
    return Section("Run", body)


def _recipe_section(run_dir: Path) -> Section:
    return Section("Recipe", note("The resolved recipe (config.yaml), every default filled in:")
                   + preformatted((run_dir / "config.yaml").read_text(errors="replace")))


def _curves_section(records: list[dict]) -> Section:
    if not records:
        return Section("Training curves", note("metrics.jsonl is empty or missing: nothing was logged yet."))
    body = "".join(figure(figures.curves_png(records, keys), f"{name}: {', '.join(keys)}", f"{name} curves")
                   for name, keys in figures.group_curves(records).items())
    return Section("Training curves", body)


def _diagnostics_section(records: list[dict]) -> Section:
    panels = figures.diagnostic_panels(records)
    if not panels:
        return Section("Diagnostics", note("metrics.jsonl holds no diagnostics (runs with log.diagnostics: false, "
                                           "or written before they existed)."))
    caption = ("What a run going wrong looks like. Discriminator accuracy (reals with D > 0, reconstructions and "
               "prior samples with D < 0) near 1 from the start: the discriminator has won. Gradient norms of each "
               "weighted loss term on the last layers: the term far above the others drives the networks. Active "
               "units well below model.latent_dim: the posterior collapsed. The aggregate posterior's mean |E z|, "
               "variance (1 for the prior) and KL to N(0, I) far from 0, 1, 0: prior samples land where the "
               "generator never learned. With a prior per class (model.class_prior) these are of z less its "
               "class's mean. Logged from one batch on each logging step.")
    return Section("Diagnostics", figure(figures.panels_png(records, panels), caption, "diagnostics"))


def _samples_section(run_dir: Path) -> Section:
    grids = sorted((run_dir / "samples").glob("step-*.png"))
    if not grids:
        return Section("Samples", note("No sample grid yet (samples/step-XXXXXXXX.png)."))
    with Image.open(grids[-1]) as latest:
        png = figures.picture_png(latest, scale=2)
    caption = (f"{grids[-1].name} (EMA weights), written during training: prior samples z ~ N(0, I) from fixed "
               "latents, then the last two rows: fixed held-out images and their reconstructions.")
    return Section("Samples", figure(png, caption, "sample grid"))


def _results_section(path: Path | None) -> Section:
    if path is None:
        return Section("Evaluation", note(f"No {RESULTS}: run `gvae eval RUN --data DATA --out RUN/{RESULTS}`, "
                                          "or pass --results."))
    results = read_json(path, "results.json")
    rows = [[name, entry.get("value"), entry.get("std"), entry.get("n"), entry.get("unit", ""),
             entry.get("better", "")] for name, entry in results.get("metrics", {}).items()]
    protocol = results.get("protocol")
    protocol = protocol or {}  # a results.json older than the keys used T = 1; "chosen" records the T it used
    temperature = protocol.get("temperature_used", protocol.get("temperature", 1.0))
    body = note(f"{path}: checkpoint {results.get('checkpoint')}, held-out data {results.get('data')}, prior "
                f"samples at temperature {temperature:g}")
    body += table(["metric", "value", "± std", "n", "unit", "better"], rows)
    skipped = results.get("skipped") or {}
    if skipped:
        body += table(["skipped", "why"], [[name, reason] for name, reason in skipped.items()])
    if protocol:
        body += preformatted(json.dumps(protocol, indent=2), summary="protocol")
    return Section("Evaluation", body)


def _generated_section(path: Path | None, preview: int) -> Section:
    if path is None:
        return Section("Generated set", note("No generated set found: `gvae generate RUN --num N --out RUN/generated` "
                                             "puts one where the report finds it, or pass --manifest."))
    manifest = read_json(path, "generated set manifest")
    filters = manifest.get("filters") or {}
    keys = ("checkpoint", "checkpoint_sha256", "count", "format", "seed", "temperature", "ema", "from_data")
    rows = [[key, manifest[key]] for key in keys if key in manifest]
    rows += [["shards", len(manifest.get("shards", []))]]
    rows += [[f"rejected ({why})", count] for why, count in (filters.get("rejected") or {}).items()]
    body = note(str(path)) + table(["", ""], rows)
    try:
        from gvae.data import load_images

        images, _ = load_images(str(path.parent), split="train", limit=preview)
        body += figure(figures.image_png(images, nrow=8, scale=2), f"The first {len(images)} generated images.",
                       "generated images")
    except (GvaeError, OSError, ValueError) as err:
        body += note(f"No preview: {err}")
    shards = [[s.get("name"), s.get("count"), s.get("sha256")] for s in manifest.get("shards", [])]
    body += f"<details><summary>shards ({len(shards)})</summary>{table(['name', 'count', 'sha256'], shards)}</details>"
    return Section("Generated set", body)


# ---------------------------------------------------------------- sections from the model
def _held_out(recipe, limit: int) -> views.HeldOut:
    """Validation images of the run's data (its training images when it has no validation split)."""
    from gvae.data import load_images, read_dataset_info

    spec, split = (recipe.data.val, "val") if recipe.data.val else (recipe.data.train, "train")
    images, labels = load_images(spec, split=split, limit=limit)
    info = read_dataset_info(spec) or {}
    return views.HeldOut(images, labels, list(info.get("label_names") or []), f"{spec} ({split} split)")


def _model_sections(run_dir: Path, num_images: int, max_codes: int, device: str) -> tuple[list[Section], str | None]:
    """Reconstructions, interpolation and latent scatter; (notes in their place, None) when no model loads."""
    from gvae.loading import load_trained

    titles = ("Reconstructions", "Latent interpolation", "Latent space", "Samples per class")
    try:
        loaded = load_trained(run_dir, ema=True, device=device)
        held = _held_out(loaded.recipe, max_codes)
    except (GvaeError, OSError) as err:
        return [Section(title, note(f"Not available: {err}")) for title in titles], None
    model = loaded.model
    n = min(num_images, len(held.images))
    pairs = views.reconstructions(model, held.images[:n], held.labels[:n])
    recon = figure(figures.image_png(pairs, nrow=n, scale=2),
                   f"Top: {n} held-out images from {held.source}; bottom: their reconstructions "
                   "decode(mean of q(z|x)), EMA weights.", "reconstructions")
    codes = views.encode_means(model, held.images, held.labels)
    first, last = views.distant_pair(codes, held.labels, same_class=model.num_classes > 0)
    strip = views.interpolation(model, held.images[first], held.images[last], steps=8,
                                label=int(held.labels[first]))
    interp = figure(figures.image_png(strip, nrow=len(strip), scale=2),
                    f"Held-out images {first} and {last} at the ends; between them, decode((1 - t) mu_{first} + "
                    f"t mu_{last}) for 8 values of t from 0 to 1.", "latent interpolation")
    points, axes = figures.project_2d(codes)
    scatter = figure(figures.scatter_png(points, held.labels, held.label_names, axes),
                     f"Posterior means of {len(codes)} held-out images ({model.latent_dim}-d"
                     f"{', first two principal axes' if model.latent_dim > 2 else ''}), coloured by label.",
                     "latent scatter")
    sections = [Section(titles[0], recon), Section(titles[1], interp), Section(titles[2], scatter),
                Section(titles[3], _class_rows(model))]
    return sections, str(loaded.checkpoint)


def _class_rows(model) -> str:
    """One row of prior samples per class of a conditional model; a note for an unconditional one."""
    if not model.num_classes:
        return note("The model is unconditional (model.conditional: false): its samples have no class.")
    per_class = 8
    rows = views.class_rows(model, per_class)
    names = ", ".join(f"{i}: {name}" for i, name in enumerate(model.class_names))
    return figure(figures.image_png(rows, nrow=per_class, scale=2),
                  f"One row per class, top to bottom ({names}); every row decodes the same {per_class} prior "
                  "latents, so each column shows what the label alone changes. EMA weights.", "samples per class")


# ---------------------------------------------------------------- the page
def build_report(run_dir: str | Path, results: str | Path | None = None, manifest: str | Path | None = None,
                 num_images: int = 8, max_codes: int = 1000, preview: int = 32, device: str = "cpu") -> str:
    """The report of ``run_dir`` as an HTML string.

    ``results`` / ``manifest`` default to the run's own results.json and generated set (see
    :func:`find_results`, :func:`find_manifest`); ``num_images`` held-out images are reconstructed,
    ``max_codes`` go into the latent scatter and ``preview`` generated images are shown.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise GvaeError(f"{run_dir} is not a run directory (no config.yaml); give the --out of `gvae train`")
    for given, what in ((results, "--results"), (manifest, "--manifest")):
        if given is not None and not Path(given).is_file():
            raise GvaeError(f"{what}: {given} does not exist")
    records = _read_metrics(run_dir)
    model_sections, checkpoint = _model_sections(run_dir, num_images, max_codes, device)
    sections = [_run_section(run_dir, records, checkpoint), _samples_section(run_dir), *model_sections,
                _diagnostics_section(records), _curves_section(records),
                _results_section(Path(results) if results else find_results(run_dir)),
                _generated_section(Path(manifest) if manifest else find_manifest(run_dir), preview),
                _recipe_section(run_dir)]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return render(f"gvae run report: {run_name(run_dir)}", f"{run_dir.resolve()} · written {stamp}", sections)


def run_name(run_dir: Path) -> str:
    """The run's name for the title: the recipe's ``name`` when config.yaml has one, else the folder name."""
    from gvae.config import read_yaml_mapping

    try:
        name = read_yaml_mapping(run_dir / "config.yaml", "config").get("name")
    except GvaeError:  # a damaged config.yaml: its section and the model's say so; the title needs no recipe
        name = None
    return str(name) if name and name != "unnamed" else run_dir.resolve().name


def write_report(run_dir: str | Path, out: str | Path | None = None, **kwargs) -> Path:
    """Write :func:`build_report` to ``out`` (default ``RUN_DIR/report.html``) atomically; returns the path."""
    page = build_report(run_dir, **kwargs)
    return write_text_atomic(Path(out) if out else Path(run_dir) / "report.html", page)


__all__ = ["build_report", "find_manifest", "find_results", "write_report"]
