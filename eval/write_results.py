"""Write docs/RESULTS.md from a Fashion-MNIST leaderboard: the table, the sample grids, and which of the source
paper's claims held, all read from the leaderboard's files (no number is typed by hand).

    python eval/write_results.py --leaderboard docs/results/fmnist --out docs/RESULTS.md

The paper claims the GVAE beats a VAE and earlier GAN/VAE hybrids on MMD, MS-SSIM diversity,
log-likelihood, reconstruction error, ELBO and KL. Each claim is checked here as "the GVAE's mean is better
than every other entry's mean", and also against the spread: a claim that holds by less than the larger of
the two standard deviations is reported as within noise.
"""

from __future__ import annotations

import argparse
import csv
import os
from collections import defaultdict
from pathlib import Path

import yaml

CLAIMS = [  # (metric, what the paper calls it)
    ("mmd2", "MMD (pixels)"),
    ("msssim_diversity", "MS-SSIM diversity"),
    ("iwae", "log-likelihood (IWAE)"),
    ("recon_mse", "reconstruction error"),
    ("elbo", "ELBO"),
]


def read_table(path: Path) -> dict[str, dict[str, dict]]:
    table: dict[str, dict[str, dict]] = defaultdict(dict)
    with open(path) as handle:
        for row in csv.DictReader(handle):
            std = float(row["std"]) if row["std"] not in ("", "nan", "None") else 0.0
            table[row["metric"]][row["entry"]] = {"mean": float(row["mean"]), "std": std,
                                                  "better": row["better"], "count": int(row["count"])}
    return table


def verdict(cells: dict[str, dict], subject: str) -> str:
    if subject not in cells or len(cells) < 2:
        return "not measured"
    better = cells[subject]["better"]
    if better not in ("higher", "lower"):
        return "no direction"
    sign = 1 if better == "higher" else -1
    mine = cells[subject]
    rivals = {name: cell for name, cell in cells.items() if name != subject}
    best_rival, rival = max(rivals.items(), key=lambda item: sign * item[1]["mean"])
    margin = sign * (mine["mean"] - rival["mean"])
    noise = max(mine["std"], rival["std"])
    if margin <= 0:
        return f"did not hold: {best_rival} is better ({rival['mean']:.4g} vs {mine['mean']:.4g})"
    if margin <= noise:
        return f"within noise: GVAE {mine['mean']:.4g} vs {best_rival} {rival['mean']:.4g} (std {noise:.2g})"
    return f"held: GVAE {mine['mean']:.4g} vs next best {best_rival} {rival['mean']:.4g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leaderboard", type=Path, default=Path("docs/results/fmnist"))
    parser.add_argument("--runs", nargs="+", default=["runs/fmnist-32-gvae-s0", "runs/fmnist-32-vae-s0",
                                                      "runs/fmnist-32-vae-dense-s0", "runs/fmnist-32-vaegan-s0"])
    parser.add_argument("--out", type=Path, default=Path("docs/RESULTS.md"))
    parser.add_argument("--budget", default="", help="the training budget, as stated in the reproduce command")
    args = parser.parse_args()

    table = read_table(args.leaderboard / "leaderboard.csv")
    recipe = yaml.safe_load(Path(args.runs[0], "config.yaml").read_text())
    steps, batch = recipe["train"]["max_steps"], recipe["train"]["batch_size"]
    grids = args.out.parent / "results" / "grids"
    grids.mkdir(parents=True, exist_ok=True)
    lines = ["# Results: Fashion-MNIST, GVAE against its baselines", "",
             "Written by `eval/write_results.py` from the leaderboard files; nothing here is typed by hand.", "",
             "## Reproduce", "", "```bash", "apt-get install dataset-fashion-mnist",
             f"{args.budget}bash eval/reproduce_fmnist.sh",
             f"python eval/write_results.py --leaderboard {args.leaderboard} --out {args.out}", "```", "",
             "## Budget", "",
             f"Every model: {steps} steps of {batch} images ({steps * batch:,} images seen), one training seed. "
             "KL is not a leaderboard row: it is stored beside the ELBO in each results.json (`elbo.kl`).", "",
             *(["**Less than one epoch of the 60,000 training images: the models are barely trained (see the "
                "sample grids), so the verdicts below exercise the pipeline and say nothing for or against the "
                "paper.** Rerun with a larger `STEPS` (and `SEEDS=\"0 1\"`) for evidence.", ""]
               if steps * batch < 60000 else []),
             "## Which of the paper's claims held here", "", "| claim: GVAE is best on | verdict |", "|---|---|"]
    lines += [f"| {label} (`{metric}`) | {verdict(table.get(metric, {}), 'GVAE')} |" for metric, label in CLAIMS]
    lines += ["", "## Leaderboard", "", (args.leaderboard / "LEADERBOARD.md").read_text().split("\n", 1)[1], "",
              "## Samples (EMA weights, last step): prior samples, then validation images over their "
              "reconstructions", ""]
    for run in args.runs:
        samples = sorted(Path(run, "samples").glob("step-*.png"))
        if samples:
            target = grids / f"{Path(run).name}.png"
            target.write_bytes(samples[-1].read_bytes())
            lines += [f"**{Path(run).name}**", "", f"![{Path(run).name}]({os.path.relpath(target, args.out.parent)})", ""]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
