"""What ``gvae generate --label-classifier`` does to a conditional model's labelled set, judged by another
classifier than the one that filtered it.

    python eval/demo_variants.py demo-conditional --seeds 0 1 2
    gvae eval train-features --data runs/demo-variants/data --out features/phantom.safetensors --epochs 10
    gvae eval train-features --data runs/demo-variants/data --out features/phantom-s1.safetensors --epochs 10 \
        --seed 1
    python eval/label_filter.py runs/demo-variants/demo-conditional-s{0,1,2} --temperatures 1.3 1.2 1.2 \
        --data runs/demo-variants/data --filter features/phantom.safetensors \
        --judge features/phantom-s1.safetensors --utility-k 25

For every run: ``--num`` samples at its temperature (the one ``gvae eval temperature`` chose, see
eval/demo_temperature.py) with the data's class frequencies, once as they come and once with the filter;
then, by the judge, each set's label agreement (overall and per label) and the total variation between its
predicted class shares and the held-out images'. The filter's own agreement is 1 by construction, so only
another classifier can say whether the labels got better or the filter found that classifier's blind spots.
With ``--utility-k K``, also ``gvae eval utility`` on each set (K real phantoms per class, 3 classifier seeds):
the accuracy on the held-out phantoms of a classifier trained on the set alone (CAS) and the gain from mixing
it into the K real ones.
Writes ``OUT/<run>.json``, ``OUT/grids/<run>.png`` (ten samples of each label, as they come, then filtered)
and ``OUT/README.md``.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch
from class_coverage import class_coverage
from summaries import write_readme
from torchvision.utils import save_image

from gvae.data import load_images
from gvae.fileio import write_json_atomic
from gvae.generation import GenerateConfig, generate
from gvae.metrics.classes import total_variation

PER_LABEL = 10  # samples of each label in the grids


def judged(run: Path, data: Path, judge: Path, generated: Path) -> dict:
    """The judge's agreement with ``generated``'s labels, and its class shares' distance from the held-out mix."""
    coverage = class_coverage(str(run), str(data), str(judge), num=0, seed=0, generated=str(generated))
    return {"agreement": coverage["agreement"], "agreement_per_label": coverage["agreement_per_label"],
            "shares": coverage["samples"], "real_shares": coverage["real"],
            "class_tv": total_variation(torch.tensor(coverage["samples"]), torch.tensor(coverage["real"]))}


def usefulness(data: Path, generated: Path, k: int) -> dict:
    """CAS and the gain over K real images per class of ``generated`` (``gvae eval utility``, 3 seeds)."""
    from gvae.evaluation.utility import run_utility
    from gvae.metrics.utility import UtilitySettings

    metrics = run_utility(str(data), UtilitySettings(ks=(k,)), synthetic=str(generated))["metrics"]
    return {name: {"value": metrics[f"utility_{name}"]["value"], "std": metrics[f"utility_{name}"]["std"]}
            for name in ("cas", f"real_k{k}", f"classic_k{k}", f"gain_k{k}")}


def study(run: Path, temperature: float, data: Path, classifier: Path, judge: Path, num: int, out: Path,
          sets: Path, utility_k: int | None) -> dict:
    summary = {"run": str(run), "temperature": temperature, "num": num, "filter": str(classifier), "judge": str(judge)}
    grids = []
    for name, label_classifier in (("plain", None), ("filtered", str(classifier))):
        target = sets / f"{run.name}-{name}"
        shutil.rmtree(target, ignore_errors=True)
        start = time.perf_counter()
        manifest = generate(GenerateConfig(str(run), str(target), num=num, temperature=temperature,
                                           label_classifier=label_classifier, progress=False))
        summary[name] = {"seconds": round(time.perf_counter() - start, 1),
                         "rejected": manifest["filters"]["rejected"]["label"], **judged(run, data, judge, target)}
        if utility_k:
            summary[name]["utility"] = usefulness(data, target, utility_k)
        images, labels = load_images(str(target), "train")
        grids += [images[labels == k][:PER_LABEL] for k in range(int(labels.max()) + 1)]
    (out / "grids").mkdir(parents=True, exist_ok=True)
    save_image(torch.cat(grids), out / "grids" / f"{run.name}.png", nrow=PER_LABEL, padding=2, pad_value=1.0)
    write_json_atomic(out / f"{run.name}.json", summary)
    return summary


def table(summaries: list[dict]) -> str:
    lines = ["| run | T | judge's agreement: as they come / filtered | per label, filtered (as they come) | "
             "class-mix TV: as they come / filtered | CAS: as they come / filtered (K real per class alone) | "
             "gain over K real: as they come / filtered | candidates per sample | seconds: as they come / filtered "
             "| grid |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        plain, kept, name = s["plain"], s["filtered"], Path(s["run"]).name
        per_label = ", ".join(f"{a:.2f} ({b:.2f})" for a, b in zip(kept["agreement_per_label"],
                                                                   plain["agreement_per_label"], strict=True))
        lines.append(f"| {name} | {s['temperature']:g} | {plain['agreement']:.3f} / {kept['agreement']:.3f} | "
                     f"{per_label} | {plain['class_tv']:.3f} / {kept['class_tv']:.3f} | {_utility(plain, kept)} | "
                     f"{1 + kept['rejected'] / s['num']:.1f} | {plain['seconds']:.0f} / {kept['seconds']:.0f} | "
                     f"[grid](grids/{name}.png) |")
    return "\n".join(lines) + "\n"


def _utility(plain: dict, kept: dict) -> str:
    """The CAS and gain cells (mean ± std over classifier seeds), or "-" twice without --utility-k."""
    if "utility" not in plain:
        return "- | -"
    (k_real, real), (k_gain, _) = [next((key, v) for key, v in plain["utility"].items() if key.startswith(prefix))
                                   for prefix in ("real_k", "gain_k")]

    def cell(key: str) -> str:
        return " / ".join(f"{u['utility'][key]['value']:.3f} ± {u['utility'][key]['std']:.3f}" for u in (plain, kept))

    return f"{cell('cas')} ({real['value']:.3f}) | {cell(k_gain)}"


README_INTRO = """# Labelled sets checked by a classifier

Written by `eval/label_filter.py` (see its docstring for the protocol): each conditional run's set of
`gvae generate` samples as they come and with `--label-classifier`, judged by a second classifier trained on the
same phantoms with another seed. Agreement: the share of samples the judge gives their own label (on real
held-out phantoms the judge is right for about 0.86 of them); class-mix TV: the total variation between the
judge's class shares on the set and on the held-out phantoms. Grids: ten samples of each label (rows: 0, 1, 2, 3
lesions asked for) as they come, then filtered. Timings from a shared 2-core machine."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--temperatures", type=float, nargs="+", required=True, help="one per run")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--filter", type=Path, required=True, help="the classifier gvae generate filters with")
    parser.add_argument("--judge", type=Path, required=True, help="another classifier, to judge the sets")
    parser.add_argument("--num", type=int, default=1000)
    parser.add_argument("--utility-k", type=int, default=None, help="also gvae eval utility with K real per class")
    parser.add_argument("--sets", type=Path, default=Path("runs/label-filter"), help="where the sets go")
    parser.add_argument("--out", type=Path, default=Path("docs/results/label-filter"))
    args = parser.parse_args()
    if len(args.temperatures) != len(args.runs):
        parser.error("give one --temperatures value per run")
    for run, temperature in zip(args.runs, args.temperatures, strict=True):
        study(run, temperature, args.data, args.filter, args.judge, args.num, args.out, args.sets, args.utility_k)
    print(write_readme(args.out, "*.json", table, README_INTRO))


if __name__ == "__main__":
    main()
