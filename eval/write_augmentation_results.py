"""Write the "Does the synthetic data help?" part of docs/RESULTS.md from the files the studies leave
(no number is typed by hand): the small-data utility studies (eval/small_data_fmnist.sh at K = 10 and 100,
eval/utility_phantom.sh), the real-only and classic-augmentation baselines on all of Fashion-MNIST
(eval/utility_fmnist.sh), and the class accuracy of a conditional model's samples (eval/conditional_fmnist.sh).
The part sits between two marker lines in docs/RESULTS.md, which eval/write_results.py keeps when it rewrites
the rest.

    python eval/write_augmentation_results.py --out docs/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from results_md import grid_lines, picture_lines, replace_block

BLOCK_NAME = "augmentation results"
MODELS = {"gvae-diffaug": "GVAE (conditional, discriminator augmentation)",
          "gvae-diffaug-class-prior": "GVAE (conditional, prior per class, discriminator augmentation)",
          "vae": "conv VAE (conditional)", "vaegan": "VAE-GAN (conditional)"}


def _cell(entry: dict | None) -> str:
    return "not measured" if entry is None else f"{entry['value']:.3f} ± {entry['std']:.3f}"


def _verdict(gain: dict | None, rival: str) -> str:
    """A gain counts when it is positive by more than its standard error (the SE of the paired differences)."""
    if gain is None:
        return "not measured"
    value, se = gain["value"], gain["std"] or 0.0
    if value > se:
        return f"helps: +{value:.3f} ± {se:.3f} over {rival}"
    if value < -se:
        return f"hurts: {value:.3f} ± {se:.3f} against {rival}"
    return f"no clear effect: {value:+.3f} ± {se:.3f} against {rival}"


@dataclass(frozen=True)
class Study:
    """One small-data utility study: where its results lie and the words that describe its data."""

    folder: Path
    k: int
    dataset: str  # the heading's name of the data
    training_set: str  # how the K labelled images per class were made
    held_out: str  # what the accuracy is measured on
    classic: str  # what classic augmentation does there
    runs: str  # the runs are runs/{runs}-{model}-s{seed}
    classes: int = 10


def _fmnist(k: int, folder: str) -> Study:
    """A Fashion-MNIST study of eval/small_data_fmnist.sh at K = ``k``, its results in ``folder``."""
    return Study(Path(folder), k, "Fashion-MNIST", f"`data/fmnist-k{k}`: `gvae data pack ... --per-class {k}`",
                 "the 10,000 test images", "random shifts of up to 2 px", f"small-k{k}")


STUDIES = [
    _fmnist(10, "docs/results/small-data"),
    _fmnist(100, "docs/results/small-data-k100"),
    Study(Path("docs/results/utility-phantom"), 25, "CT-like phantoms, lesion count",
          "`data/phantom-k25`: 4,000 phantoms packed at 64 px, a quarter held out, 25 per class kept",
          "the 1,000 held-out phantoms", "random shifts of up to 2 px; no flips, as anatomy has a side", "phantom-k25",
          classes=4),
]


def _across(runs: list[dict], name: str, digits: int = 3) -> str:
    """Mean ± std over training seeds of one metric's per-seed means (gains with their sign), to ``digits``
    decimals."""
    values = [m[name]["value"] for m in runs if name in m]
    if not values:
        return "not measured"
    mean = f"{statistics.mean(values):{'+' if '_gain' in name else ''}.{digits}f}"
    return mean if len(values) == 1 else f"{mean} ± {statistics.stdev(values):.{digits}f}"


def small_data_section(study: Study, out_dir: Path) -> list[str]:
    k, real = study.k, json.loads((study.folder / "real.json").read_text())["metrics"]
    lines = [f"### K = {k} labelled images per class ({study.dataset})", "",
             f"The classifier trains on the same {study.classes * k:,} labelled images throughout ({study.training_set}), "
             f"alone, with classic augmentation ({study.classic}), or with 500 samples per class of a conditional "
             "model trained on those same images only, mixed 1:1 into every batch; accuracy on "
             f"{study.held_out}, mean ± std over 3 classifier seeds; gains are paired differences ± their standard "
             "error.", "",
             "| training set | accuracy | CAS (samples only) | against real only | against classic augmentation |",
             "|---|---|---|---|---|",
             f"| real only | {_cell(real.get(f'utility_real_k{k}'))} | | | |",
             f"| real + classic augmentation | {_cell(real.get(f'utility_classic_k{k}'))} | | | |"]
    verdicts, grids, by_model, gains = [], [], {}, []
    for path in sorted(study.folder.glob("*-s*.json")):
        model, seed = path.stem.rsplit("-s", 1)
        metrics = json.loads(path.read_text())["metrics"]
        by_model.setdefault(model, []).append(metrics)
        against_real = _verdict(metrics.get(f"utility_gain_k{k}"), "real only")
        against_classic = _verdict(metrics.get(f"utility_gain_vs_classic_k{k}"), "classic")
        lines.append(f"| real + {MODELS.get(model, model)}, training seed {seed} | "
                     f"{_cell(metrics.get(f'utility_synthetic_k{k}'))} | {_cell(metrics.get('utility_cas'))} | "
                     f"{against_real} | {against_classic} |")
        verdicts.append(f"{MODELS.get(model, model)} (seed {seed}): {against_real.split(':')[0]} against real only, "
                        f"{against_classic.split(':')[0]} against classic augmentation")
        grids += grid_lines([Path(f"runs/{study.runs}-{model}-s{seed}")], out_dir)
        if against_real.startswith("helps"):
            gains.append(metrics[f"utility_gain_k{k}"]["value"])
    lines += ["", "Across training seeds (mean ± std of each seed's mean; a model trained once shows its one value):",
              "", "| model | training seeds | accuracy | CAS | gain over real only | gain over classic |",
              "|---|---|---|---|---|---|"]
    for model, runs in by_model.items():
        cells = [_across(runs, name) for name in (f"utility_synthetic_k{k}", "utility_cas", f"utility_gain_k{k}",
                                                   f"utility_gain_vs_classic_k{k}")]
        lines.append(f"| {MODELS.get(model, model)} | {len(runs)} | " + " | ".join(cells) + " |")
    cas = [m["utility_cas"]["value"] for runs in by_model.values() for m in runs if "utility_cas" in m]
    real_accuracy = real.get(f"utility_real_k{k}", {}).get("value")
    mixed = ("mixed 1:1 into every batch they dilute the real images rather than add to them" if not gains else
             f"mixed 1:1 into every batch they helped only where marked above, by at most +{max(gains):.3f}")
    suggests = [] if not cas or real_accuracy is None else [
        "", f"What the numbers suggest: a classifier trained on the samples alone (CAS) reaches {min(cas):.2f} to "
        f"{max(cas):.2f} (chance {1 / study.classes:.2f}), against {real_accuracy:.2f} for the "
        f"{study.classes * k:,} real images, so the samples carry only part of their class; {mixed}. A model has to "
        "bring its CAS near the real accuracy before its samples can help much."]
    lines += ["", f"**{study.dataset}, K = {k}: " + "; ".join(verdicts) + ".** A gain counts only when it is larger "
              "than its standard error.", *suggests, "", "Samples of each model (prior samples of the EMA weights, "
              "then training images over their reconstructions):", "", *grids]
    return lines + [""]


def full_data_baselines(path: Path) -> list[str]:
    metrics = json.loads(path.read_text())["metrics"]
    ks = sorted({int(m.group(1)) for name in metrics if (m := re.search(r"_k(\d+)$", name))})
    lines = ["### Real-only and classic augmentation on all of Fashion-MNIST (no model)", "",
             "K images per class drawn by each classifier seed from the first 20,000 training images:", "",
             "| K | real only | real + classic augmentation |", "|---|---|---|"]
    lines += [f"| {k} | {_cell(metrics.get(f'utility_real_k{k}'))} | {_cell(metrics.get(f'utility_classic_k{k}'))} |"
              for k in ks]
    return lines + [""]


def _setting(result: dict) -> str:
    """The training settings a class-accuracy result was made with, as the recipe keys that set them."""
    d_lr = result.get("d_lr", result["lr"])  # results without d_lr were made with both rates equal
    matching = "on" if result.get("feature_matching") else "off"
    prior = ", model.class_prior on" if result.get("class_prior") else ""  # older results: off
    return f"optim.lr {result['lr']:g}, optim.d_lr {d_lr:g}, loss.feature_matching {matching}{prior}"


QUALITY = (("fid", "domain FID ↓", 2), ("kid", "KID ↓", 3), ("precision", "precision ↑", 3),
           ("recall", "recall ↑", 3), ("msssim_diversity", "MS-SSIM diversity ↓ (real)", 3),
           ("class_tv", "class TV ↓", 3), ("class_agreement", "class agreement ↑", 3))


def quality_table(folder: Path, settings: dict[str, str]) -> list[str]:
    """Mean ± std over training seeds of the quality-*.json evaluations in ``folder``, one row per setting
    (``settings`` maps a run to its setting; a run without a class-accuracy result is left out)."""
    by_setting: dict[str, list[dict]] = {}
    for path in sorted(folder.glob("quality*.json")):
        result = json.loads(path.read_text())
        run = str(Path(result["checkpoint"]).parent.parent)
        if run in settings:
            by_setting.setdefault(settings[run], []).append(result["metrics"])
    if not by_setting:
        return []
    first = next(iter(by_setting.values()))[0]
    lines = ["The same runs' samples against the test images (`gvae eval --metrics fid,kid,prc,msssim,classes`, "
             f"{first['fid']['n']:,} samples, domain features; class agreement: the share the classifier gives "
             "the class they were drawn with, at the test images' class frequencies):", "",
             "| setting | seeds | " + " | ".join(title for _, title, _ in QUALITY) + " |",
             "|---|---|" + "---|" * len(QUALITY)]
    for setting, runs in by_setting.items():
        real = f" ({runs[0]['msssim_diversity']['real_reference']:.3f})"
        cells = [_across(runs, name, digits) + (real if name == "msssim_diversity" else "")
                 for name, _, digits in QUALITY]
        lines.append(f"| {setting} | {len(runs)} | " + " | ".join(cells) + " |")
    return lines + [""]


def class_accuracy_section(folder: Path, out_dir: Path) -> list[str]:
    results = [json.loads(p.read_text()) for p in sorted(folder.glob("class_accuracy*.json"))]
    if not results:
        return []
    names = list(results[0]["per_class"])
    by_setting: dict[str, list[float]] = {}
    for r in results:
        by_setting.setdefault(_setting(r), []).append(r["accuracy"])
    lines = ["### Does the label steer the conditional GVAE?", "",
             f"`recipes/fmnist-32-gvae-cond.yaml` trained on all of Fashion-MNIST for {results[0]['steps']} steps of "
             f"64 images; {results[0]['per_class_samples']} samples asked of every class, classified by the domain "
             "classifier of `gvae eval train-features` (trained on real images); chance is "
             f"{results[0]['chance']:.2f}.", "",
             "| setting | class accuracy of the samples, mean ± std over training seeds | seeds |",
             "|---|---|---|"]
    for setting, values in by_setting.items():
        spread = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
        lines.append(f"| {setting} | {statistics.mean(values):.3f}{spread} | {len(values)} |")
    lines += ["", "Per class:", "",
             "| class | " + " | ".join(Path(r["run"]).name for r in results) + " |",
             "|---|" + "---|" * len(results)]
    lines += [f"| {name} | " + " | ".join(f"{r['per_class'][name]:.3f}" for r in results) + " |" for name in names]
    lines += ["| **all classes** | " + " | ".join(f"**{r['accuracy']:.3f}**" for r in results) + " |", ""]
    lines += quality_table(folder, {r["run"]: _setting(r) for r in results})
    rows = [(Path(r["run"]).name, folder / "grids" / f"{Path(r['run']).name}.png") for r in results]
    rows = [(name, grid) for name, grid in rows if grid.is_file()]
    if rows:
        lines += ["Prior samples (T = 1, seed 0), one row per class, top to bottom: " + ", ".join(names) + ":", ""]
        for name, grid in rows:
            lines += picture_lines(name, grid, out_dir)
        lines += ["Each run's training grid (prior samples, then training images over their reconstructions):", ""]
    for r in results:
        lines += grid_lines([Path(r["run"])], out_dir)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baselines", type=Path, default=Path("docs/results/utility/real.json"))
    parser.add_argument("--conditional", type=Path, default=Path("docs/results/conditional"))
    parser.add_argument("--out", type=Path, default=Path("docs/RESULTS.md"))
    args = parser.parse_args()
    lines = ["## Does the synthetic data help?", "",
             "Written by `eval/write_augmentation_results.py` from the studies' results files. Reproduce:", "",
             "```bash", "SEEDS=\"0 1\" bash eval/small_data_fmnist.sh           # K = 10 per class: three conditional models",
             "K=100 OUT=docs/results/small-data-k100 SEEDS=\"0 1\" bash eval/small_data_fmnist.sh",
             "# the GVAE with a prior per class (at K = 100 with K=100 OUT=docs/results/small-data-k100 as above)",
             "MODELS=gvae-diffaug TAG=-class-prior SET=model.class_prior=true SEEDS=\"0 1\" bash eval/small_data_fmnist.sh",
             "SEEDS=\"0 1\" bash eval/utility_phantom.sh             # K = 25 phantoms per lesion count",
             "bash eval/utility_fmnist.sh         # real-only and classic augmentation, K = 10 and 100",
             "STEPS=400 TAG=-prior bash eval/conditional_fmnist.sh   # the current recipe (a prior per class)",
             "STEPS=400 TAG=-cvae SET=model.class_prior=false bash eval/conditional_fmnist.sh   # one prior for all; "
             "the earlier rows are the recipe before feature matching (with and without LR=1e-3)",
             "python eval/write_augmentation_results.py", "```", ""]
    for study in STUDIES:
        if (study.folder / "real.json").is_file():
            lines += small_data_section(study, args.out.parent)
    if args.baselines.is_file():
        lines += full_data_baselines(args.baselines)
    lines += class_accuracy_section(args.conditional, args.out.parent)
    text = args.out.read_text() if args.out.is_file() else ""
    args.out.write_text(replace_block(text, BLOCK_NAME, lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
