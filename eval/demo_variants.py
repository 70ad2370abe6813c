"""The demo's recipe against variants of it, at the demo's own budget: what each change does to its phantoms.

    python eval/demo_variants.py demo earlier-demo --seeds 0 1
    -> docs/results/demo-variants/README.md: diversity against the real phantoms', reconstruction, time, and
       the sample grid of every run

"demo" trains :func:`gvae.demo.demo_recipe` as ``gvae demo`` does (5,600 steps); "demo-5000" is that recipe at the
5,000 steps it had before, and the other demo-* variants change that one (demo-constant-lr-*: its predecessor,
with a constant learning rate); every other variant trains the demo's earlier
recipe (:data:`EARLIER`: 1,000 steps of 16 on 1,800 phantoms at 64 px, the discriminator playing from the first
step, no coordinate channels) with its overrides. Each run is then evaluated: the MS-SSIM diversity of 500 prior
samples against the real phantoms', the held-out reconstruction error and, given ``--feature-weights`` (a
lesion-count classifier: ``gvae eval train-features --data runs/demo-variants/data --out
features/phantom.safetensors --epochs 10``), the share of 1,000 prior samples in which it sees lesions
(eval/class_coverage.py), beside the held-out phantoms'. The phantoms are packed once, exactly as the demo packs
them. Runs go to ``--runs`` (a finished one is not trained again, so the script can be stopped and rerun); each
run's summary and last sample grid to ``--out``, whose README.md tables every summary there.
``narrow-16`` is the earlier recipe before it was widened (4 channels at 64 px, a 16-d latent).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import yaml
from summaries import write_readme

from gvae.config import recipe_from_dict

NARROW_16 = {"channel_base": 128, "channel_min": 4, "latent_dim": 16}
# the discriminator augmentation of the phantom utility study, as that recipe states it
DIFFAUG = yaml.safe_load((Path(__file__).resolve().parents[1] / "recipes/phantom-64-gvae-cond-diffaug.yaml")
                         .read_text())["augment"]
# The demo's recipe before its discriminator joined late, its generator read coordinates and its learning rate
# followed a cosine: 1,000 steps, the discriminator playing from the first. Every variant but the demo-* ones is
# of this one.
EARLIER_STEPS = 1000
EARLIER = {"model": {"coord_channels": False}, "loss": {"adv_start_fraction": 0.0}, "optim": {"schedule": "constant"}}
# The demo's recipe at 5,000 steps, as it was before 5,600: the steps and the cadence of logs and checkpoints
# derived from them. The demo-* variants measured then keep it, so that they reproduce.
AT_5000 = {"train": {"max_steps": 5000, "checkpoint_every": 1250}, "log": {"every": 50, "sample_every": 1000}}


def at_5000(**sections: dict) -> dict:
    """The overrides ``sections`` on the demo's 5,000-step recipe, each section merged key by key."""
    return {name: {**AT_5000.get(name, {}), **sections.get(name, {})} for name in {**AT_5000, **sections}}


VARIANTS: dict[str, dict] = {
    "demo": {},
    "demo-5000": at_5000(),
    "demo-conditional": {"model": {"conditional": True}},
    "demo-conditional-beta-2": {"model": {"conditional": True}, "loss": {"beta": 2.0}},
    "demo-class-prior": {"model": {"conditional": True, "class_prior": True}},
    # the lesion-count classifier (see above) judging every prior sample against its label, in the generator's loss
    "demo-conditional-label-loss": {"model": {"conditional": True},
                                    "loss": {"label_classifier": "features/phantom.safetensors", "label_weight": 0.002}},
    "demo-conditional-label-loss-0.01": {"model": {"conditional": True},
                                         "loss": {"label_classifier": "features/phantom.safetensors",
                                                  "label_weight": 0.01}},
    "demo-no-latent-noise": at_5000(model={"latent_noise": 0.0}),
    "demo-latent-16": at_5000(model={"latent_dim": 16}),
    "demo-adv-0.01": at_5000(loss={"adv_weight": 0.01}),
    "demo-beta-0.7": at_5000(loss={"beta": 0.7}),
    # the demo's recipe before its cosine learning rate, and variants of it
    "demo-constant-lr-4000-nchw": at_5000(optim={"schedule": "constant"},
                                          train={"max_steps": 4000, "channels_last": False}),
    "demo-constant-lr-5000-nchw": at_5000(optim={"schedule": "constant"}, train={"channels_last": False}),
    "demo-constant-lr-min16": at_5000(optim={"schedule": "constant"}, model={"channel_min": 16}),
    "demo-constant-lr-adam-0.9": at_5000(optim={"schedule": "constant", "betas": [0.9, 0.999]}),
    "earlier-demo": {},
    "steps-1500": {"train": {"max_steps": 1500}},
    "diffaug": {"augment": DIFFAUG},
    "diffaug-adv-0.02": {"augment": DIFFAUG, "loss": {"adv_weight": 0.02}},
    "adv-0.01": {"loss": {"adv_weight": 0.01}},
    "beta-0.5": {"loss": {"beta": 0.5}},
    "vae-first-3000": {"train": {"max_steps": 3000}, "loss": {"adv_start_fraction": 0.7}},
    "vae-first-3000-0.85": {"train": {"max_steps": 3000}, "loss": {"adv_start_fraction": 0.85}},
    "vae-only-3000": {"train": {"max_steps": 3000}, "loss": {"adv_start_fraction": 1.0}},
    "vae-first-3000-adv-0.02-r1": {"train": {"max_steps": 3000},
                                   "loss": {"adv_start_fraction": 0.85, "adv_weight": 0.02, "r1_gamma": 0.1}},
    "vae-only-5000": {"train": {"max_steps": 5000}, "loss": {"adv_start_fraction": 1.0}},
    "vae-only-3000-coords": {"train": {"max_steps": 3000}, "loss": {"adv_start_fraction": 1.0},
                             "model": {"coord_channels": True}},
    "vae-only-3000-coords-cosine": {"train": {"max_steps": 3000}, "loss": {"adv_start_fraction": 1.0},
                                    "model": {"coord_channels": True}, "optim": {"schedule": "cosine"}},
    "latent-16": {"model": {"latent_dim": 16}},
    "latent-16-cosine": {"model": {"latent_dim": 16}, "optim": {"schedule": "cosine"}},
    "latent-16-feature-matching": {"model": {"latent_dim": 16}, "loss": {"feature_matching": True}},
    "narrow-16": {"model": NARROW_16},
    "narrow-16-conditional": {"model": {**NARROW_16, "conditional": True}},
    "narrow-16-feature-matching": {"model": NARROW_16, "loss": {"feature_matching": True}},
    "narrow-16-no-latent-norm": {"model": {**NARROW_16, "latent_norm": False}},
    "narrow-16-conv-vae": {"model": {**NARROW_16, "kind": "vae"}},
}


def variant_recipe(name: str, data: Path, seed: int) -> dict:
    """The demo's recipe on ``data`` (demo-* variants) or its earlier one, with variant ``name``'s
    overrides, each section updated key by key."""
    from gvae.demo import demo_recipe

    current = name.startswith("demo")
    recipe = demo_recipe(data, steps=None if current else EARLIER_STEPS).to_dict()
    for layer in ([] if current else [EARLIER]) + [VARIANTS[name], {"train": {"seed": seed}}]:
        for section, values in layer.items():
            recipe[section] = {**recipe[section], **values}
    return recipe


def lesion_shares(run: Path, data: Path, feature_weights: Path) -> dict:
    """Share of 1,000 prior samples of ``run``, and of the held-out phantoms, that the classifier in
    ``feature_weights`` gives at least one lesion (class 0 is "0 lesions")."""
    from class_coverage import class_coverage

    shares = class_coverage(str(run), str(data), str(feature_weights), num=1000, seed=0)
    return {"lesion_share": 1 - shares["samples"][0], "real_lesion_share": 1 - shares["real"][0]}


def run_variant(name: str, seed: int, data: Path, runs: Path, out: Path, feature_weights: Path | None) -> dict:
    """Train and evaluate one (variant, seed) unless its summary exists (adding the lesion shares to one that
    lacks them); returns the summary."""
    from gvae.demo import FULL
    from gvae.evaluation.protocol import Protocol
    from gvae.evaluation.results import write_results
    from gvae.evaluation.runner import run_evaluation
    from gvae.train.loop import train

    summary_path = out / f"{name}-s{seed}.json"
    run = runs / f"{name}-s{seed}"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        if feature_weights and "lesion_share" not in summary:
            summary.update(lesion_shares(run, data, feature_weights))
            summary_path.write_text(json.dumps(summary, indent=1) + "\n")
        return summary
    start = time.perf_counter()
    train(recipe_from_dict(variant_recipe(name, data, seed)), run, progress=False)
    seconds = time.perf_counter() - start
    protocol = Protocol(data=str(data), metrics="msssim,recon", num_samples=FULL.eval_samples,
                        msssim_pairs=FULL.msssim_pairs, batch_size=64)
    results = run_evaluation(str(run), protocol)
    write_results(results, run / "results.json")
    metrics = results["metrics"]
    summary = {"variant": name, "seed": seed, "overrides": VARIANTS[name], "train_seconds": round(seconds, 1),
               "msssim_diversity": metrics["msssim_diversity"]["value"],
               "real_msssim_diversity": metrics["msssim_diversity"]["real_reference"],
               "recon_mse": metrics["recon_mse"]["value"], "recon_psnr": metrics["recon_psnr"]["value"],
               **(lesion_shares(run, data, feature_weights) if feature_weights else {})}
    (out / "grids").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sorted((run / "samples").glob("step-*.png"))[-1], out / "grids" / f"{name}-s{seed}.png")
    summary_path.write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def table(summaries: list[dict]) -> str:
    """Markdown: one row per run, in the order of VARIANTS then seed, with a link to its sample grid."""
    order = {name: i for i, name in enumerate(VARIANTS)}
    lines = ["| variant | seed | MS-SSIM diversity (real phantoms) | recon MSE | recon PSNR dB | samples with lesions "
             "(real phantoms) | training s | samples |", "|---|---|---|---|---|---|---|---|"]
    for s in sorted(summaries, key=lambda s: (order.get(s["variant"], len(order)), s["variant"], s["seed"])):
        lines.append(f"| {s['variant']} | {s['seed']} | {s['msssim_diversity']:.3f} ({s['real_msssim_diversity']:.3f}) "
                     f"| {s['recon_mse']:.5f} | {s['recon_psnr']:.2f} | {_lesions(s)} | {s['train_seconds']:.0f} "
                     f"| [grid](grids/{s['variant']}-s{s['seed']}.png) |")
    return "\n".join(lines) + "\n"


def _lesions(summary: dict) -> str:
    if "lesion_share" not in summary:
        return "-"
    return f"{summary['lesion_share']:.3f} ({summary['real_lesion_share']:.3f})"


def write_summary(out: Path) -> str:
    """Write ``out``/README.md from every run summary in ``out``; returns the table."""
    return write_readme(out, "*-s*.json", table, (
        "# The demo's recipe and its variants\n\nWritten by `eval/demo_variants.py` (see its docstring for the "
        "protocol): batches of 16 phantoms at 64 px on 2 CPU cores; `demo` is `gvae demo`'s recipe (5,600 steps), "
        "`demo-5000` the same recipe at 5,000 steps and the other demo-* rows changes of that one, the "
        "demo-conditional rows that recipe conditional on the lesion count (`-beta-2`: with beta 2; their lesion "
        "share draws the four counts equally often), the demo-class-prior rows the same with a prior per lesion "
        "count (`model.class_prior`), the demo-conditional-label-loss rows the conditional recipe with the lesion-count "
        "classifier in the generator's loss (`loss.label_weight` 0.002, and 0.01 with `-0.01`; they trained beside "
        "evaluations, so their times run high), the demo-constant-lr-* rows its predecessor with a constant learning rate (`-4000-nchw` and `-5000-nchw`: "
        "those lengths in the default memory layout), the demo-d-on-g-schedule-* rows the cosine recipe when the "
        "discriminator still followed the generator's learning-rate schedule (joining for the last 5%, it trained "
        "at under 1% of its learning rate; the script no longer trains these), every other row the earlier "
        "recipe (1,000 steps, the discriminator from the first) changed as its name says; "
        "MS-SSIM diversity of 500 prior samples (lower is more diverse) beside the real phantoms'; "
        "reconstruction of the 200 held-out phantoms; "
        "the share of 1,000 prior samples in which a lesion-count classifier (86.5% accurate on the held-out "
        "phantoms) sees lesions, beside its share on the held-out phantoms; it means something only where the "
        "samples are phantoms (look at the grid: on stripes or texture it answers at random). Timings from a "
        "shared machine."))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+", choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--runs", type=Path, default=Path("runs/demo-variants"))
    parser.add_argument("--out", type=Path, default=Path("docs/results/demo-variants"))
    parser.add_argument("--feature-weights", type=Path, default=None, help="lesion-count classifier (see above)")
    args = parser.parse_args()
    from gvae.data import PackConfig, pack
    from gvae.demo import FULL, RESOLUTION

    data = args.runs / "data"
    if not (data / "dataset.json").is_file():
        pack(PackConfig(src="-", kind="phantom", out=str(data), resolution=RESOLUTION, num=FULL.phantoms,
                        shard_size=1000, val_fraction=FULL.val_fraction, command="eval/demo_variants.py"))
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for name in args.variants:
            run_variant(name, seed, data, args.runs, args.out, args.feature_weights)
    print(write_summary(args.out), end="")

if __name__ == "__main__":
    main()
