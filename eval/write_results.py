"""Write docs/RESULTS.md from a Fashion-MNIST leaderboard: the table, the sample grids, and which of the source
paper's claims held, all read from the leaderboard's files (no number is typed by hand).

    python eval/write_results.py --leaderboard docs/results/fmnist --out docs/RESULTS.md

The paper claims the GVAE beats a VAE and earlier GAN/VAE hybrids on MMD, MS-SSIM diversity,
log-likelihood, reconstruction error, ELBO and KL, and that a latent of 1000 beats one of 100 (its Table 5).
Each claim is checked here as "the subject's mean is better than every rival's mean" (the GVAE against the
three baselines; latent 1000 against latent 100), and also against the spread: a claim that holds by less
than the larger of the two standard deviations is reported as within noise.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import yaml
from results_md import grid_lines, kept_blocks

BASELINES = ("conv VAE", "dense VAE", "VAE-GAN")
LATENTS = ("GVAE latent 1000", "GVAE latent 100")  # (subject, rival)
SAMPLE_RIVALS = ("conv VAE", "VAE-GAN")  # what a user would otherwise pick for augmentation images
SAMPLE_METRICS = [("fid", "domain FID"), ("kid", "domain KID"), ("precision", "precision"), ("recall", "recall")]
COMPARISONS = [  # (subject, rivals, what the comparison isolates)
    ("GVAE, conv VAE's time", ("conv VAE",), "at equal wall-clock time: the GVAE trained for as long as the conv "
                                             "VAE's steps took, timed side by side (eval/equal_time_steps.py)"),
    ("GVAE", ("conv VAE + latent norm",), "against the conv VAE with the same posterior-mean standardisation "
                                          "(`model.latent_norm`): what the adversarial part adds"),
    ("GVAE", ("GVAE without feature matching",), "against itself without the reconstruction in the "
                                                 "discriminator's features (`loss.feature_matching: false`)"),
]
CLAIMS = [  # (metric, what the paper calls it)
    ("mmd2", "MMD (pixels)"),
    ("msssim_diversity", "MS-SSIM diversity"),
    ("iwae", "log-likelihood (IWAE)"),
    ("recon_mse", "reconstruction error"),
    ("elbo", "ELBO"),
    ("kl", "KL divergence"),
]


def read_table(path: Path) -> dict[str, dict[str, dict]]:
    table: dict[str, dict[str, dict]] = defaultdict(dict)
    with open(path) as handle:
        for row in csv.DictReader(handle):
            std = float(row["std"]) if row["std"] not in ("", "nan", "None") else 0.0
            table[row["metric"]][row["entry"]] = {"mean": float(row["mean"]), "std": std,
                                                  "better": row["better"], "count": int(row["count"])}
    return table


def verdict(cells: dict[str, dict], subject: str, rivals: tuple[str, ...]) -> str:
    """Whether ``subject`` beat every one of ``rivals`` (those measured) on this metric, and by how much."""
    measured = {name: cells[name] for name in rivals if name in cells}
    if subject not in cells or not measured:
        return "not measured"
    better = cells[subject]["better"]
    if better not in ("higher", "lower"):
        return "no direction"
    sign = 1 if better == "higher" else -1
    mine = cells[subject]
    best_rival, rival = max(measured.items(), key=lambda item: sign * item[1]["mean"])
    margin = sign * (mine["mean"] - rival["mean"])
    noise = max(mine["std"], rival["std"])
    if margin <= 0:
        return f"did not hold: {best_rival} is better ({rival['mean']:.4g} vs {mine['mean']:.4g})"
    if margin <= noise:
        return f"within noise: {subject} {mine['mean']:.4g} vs {best_rival} {rival['mean']:.4g} (std {noise:.2g})"
    return f"held: {subject} {mine['mean']:.4g} vs next best {best_rival} {rival['mean']:.4g}"


def sample_quality_lines(table: dict[str, dict[str, dict]]) -> list[str]:
    """The verdicts a user choosing an augmentation generator needs: the GVAE's prior samples against the conv
    VAE's and the VAE-GAN's on the domain-feature metrics, then the comparisons of :data:`COMPARISONS` that were
    measured (equal wall-clock time; the ablation)."""
    lines = ["", f"## Samples: is the GVAE worth choosing over the {' and the '.join(SAMPLE_RIVALS)}?", "",
             "Prior samples against the held-out images, in the domain classifier's features (lower FID/KID is "
             "better; precision is the share of samples that look like some real image, recall the share of "
             "real images that some sample resembles: 0 means the samples cover a small part of the data).", "",
             f"| GVAE against {', '.join(SAMPLE_RIVALS)} on | verdict |", "|---|---|"]
    lines += [f"| {label} (`{metric}`) | {verdict(table.get(metric, {}), 'GVAE', SAMPLE_RIVALS)} |"
              for metric, label in SAMPLE_METRICS]
    for subject, rivals, what in COMPARISONS:
        if subject in table.get("fid", {}) and all(rival in table["fid"] for rival in rivals):
            lines += ["", f"{subject} against {', '.join(rivals)}, {what}:", "", "| on | verdict |", "|---|---|"]
            lines += [f"| {label} (`{metric}`) | {verdict(table.get(metric, {}), subject, rivals)} |"
                      for metric, label in SAMPLE_METRICS]
    return lines


def training_minutes(run: Path, batch: int) -> float | None:
    """Wall-clock minutes a run trained, from the images/s it logged for each window of steps."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        return None
    seconds, last = 0.0, 0
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["step"] > last:  # a resumed run may log a step again
            seconds += (record["step"] - last) * batch / record["images_per_s"]
            last = record["step"]
    return seconds / 60


def run_budgets(runs: list[str], path: Path) -> dict[str, dict]:
    """Each run's steps, batch and training minutes, by run name, kept in ``path`` (JSON) beside the leaderboard.

    Runs present here are measured and their records replaced; the records of runs that are not (the
    leaderboard kept their cached results: another machine trained them, or their directories were deleted)
    are kept, so RESULTS.md can be rewritten after adding one entry without retraining the others.
    """
    budgets = json.loads(path.read_text()) if path.is_file() else {}
    for run in map(Path, runs):
        if (run / "config.yaml").is_file():
            train = yaml.safe_load((run / "config.yaml").read_text())["train"]
            budgets[run.name] = {"steps": train["max_steps"], "batch": train["batch_size"],
                                 "minutes": training_minutes(run, train["batch_size"])}
    path.write_text(json.dumps(budgets, indent=1, sort_keys=True) + "\n")
    return budgets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leaderboard", type=Path, default=Path("docs/results/fmnist"))
    parser.add_argument("--runs", nargs="+", default=[f"runs/fmnist-32-{name}-s0" for name in (
        "gvae", "vae", "vae-dense", "vaegan", "vae-ln", "gvae-time", "gvae-nofm")])
    parser.add_argument("--out", type=Path, default=Path("docs/RESULTS.md"))
    parser.add_argument("--budget", default="", help="the training budget, as stated in the reproduce command")
    args = parser.parse_args()

    table = read_table(args.leaderboard / "leaderboard.csv")
    budgets = run_budgets(args.runs, args.leaderboard / "budgets.json")
    steps, batch = budgets[Path(args.runs[0]).name]["steps"], budgets[Path(args.runs[0]).name]["batch"]
    other_budgets = [f"{name} ({budget['steps']} steps)" for name, budget in budgets.items()
                     if name in map(lambda run: Path(run).name, args.runs) and budget["steps"] != steps]
    lines = ["# Results: Fashion-MNIST, GVAE against its baselines", "",
             "Written by `eval/write_results.py` from the leaderboard files; nothing here is typed by hand.", "",
             "## Reproduce", "", "```bash", "apt-get install dataset-fashion-mnist",
             f"{args.budget}bash eval/reproduce_fmnist.sh",
             f"python eval/write_results.py --leaderboard {args.leaderboard} --out {args.out}", "```", "",
             "## Budget", "",
             f"Every model: {steps} steps of {batch} images ({steps * batch:,} images seen)"
             + (f", except {', '.join(other_budgets)}" if other_budgets else "")
             + f"; each cell averages {table['mmd2']['GVAE']['count']} result(s) (training runs x evaluation seeds).",
             "",
             "Training time per run where these were trained (from the images/s each run logged): " + ", ".join(
                 f"{Path(run).name} {minutes:.1f} min" for run in args.runs
                 if (minutes := budgets.get(Path(run).name, {}).get("minutes")) is not None) + ".", "",
             *(["**Less than one epoch of the 60,000 training images: the models are barely trained (see the "
                "sample grids), so the verdicts below exercise the pipeline and say nothing for or against the "
                "paper.** For evidence run the full protocol: `STEPS=20000 SEEDS=\"0 1\" LATENTS=\"100 1000\" "
                "SUITE=eval/suites/fmnist.yaml bash eval/reproduce_fmnist.sh` (GPU-sized: its IWAE alone was "
                "projected at ~5.6 hours per model on 2 CPU cores, see benchmarks/README.md).", ""]
               if steps * batch < 60000 else []),
             "## Which of the paper's claims held here", "",
             f"GVAE against {', '.join(BASELINES)}:", "", "| claim: GVAE is best on | verdict |", "|---|---|"]
    lines += [f"| {label} (`{metric}`) | {verdict(table.get(metric, {}), 'GVAE', BASELINES)} |"
              for metric, label in CLAIMS]
    lines += sample_quality_lines(table)
    if LATENTS[0] in table.get("mmd2", {}):
        lines += ["", "Latent size (the paper's Table 5):", "",
                  "| claim: latent 1000 beats latent 100 on | verdict |", "|---|---|"]
        lines += [f"| {label} (`{metric}`) | {verdict(table.get(metric, {}), LATENTS[0], LATENTS[1:])} |"
                  for metric, label in CLAIMS]
    lines += ["", "## Leaderboard", "", (args.leaderboard / "LEADERBOARD.md").read_text().split("\n", 1)[1], "",
              "## Samples (EMA weights, last step): prior samples, then validation images over their "
              "reconstructions", ""]
    lines += grid_lines(args.runs, args.out.parent)
    kept = kept_blocks(args.out.read_text()) if args.out.is_file() else []  # the other scripts' parts stay
    args.out.write_text("\n".join(lines) + "\n" + "".join(f"\n{block}\n" for block in kept))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
