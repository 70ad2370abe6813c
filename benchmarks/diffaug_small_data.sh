#!/usr/bin/env bash
# Discriminator augmentation on small data: the Fashion-MNIST GVAE trained on 1,000 images with and without
# it (recipes/fmnist-32-gvae.yaml vs recipes/fmnist-32-gvae-diffaug.yaml), SEEDS training seeds each, the same
# budget of STEPS steps of 64 images (every other setting, schedules included, as the recipes have it), then
# domain FID/KID against the real test split and memorisation of the 1,000 training images; prints one table
# and the ratio of the mean FIDs. Run from the repository root:
#
#   bash benchmarks/diffaug_small_data.sh               # the budget: 3,000 steps (192 epochs of the subset)
#   STEPS=20 NUM_SAMPLES=200 NUM_REAL=500 bash benchmarks/diffaug_small_data.sh   # checks every stage runs
#
# The 1,000 images are the first shard of the seeded pack (train-000000.tar of `gvae data pack ... --shard-size
# 1000`, the default): a seeded shuffle of the training split, so about 100 per class, not exactly; their label
# counts are printed. Needs `apt-get install dataset-fashion-mnist` (or FMNIST=dir with the four IDX files).
set -euo pipefail
STEPS=${STEPS:-3000}
SEEDS=${SEEDS-"0 1"}
ARMS=${ARMS:-"plain diffaug"}                      # e.g. ARMS=plain and ARMS=diffaug in two shells, one core each
NUM_SAMPLES=${NUM_SAMPLES:-5000}                   # samples drawn per run for FID/KID and memorisation
NUM_REAL=${NUM_REAL:-10000}                        # test images (the whole t10k split)
DATA=${DATA:-data/fmnist}
OUT=${OUT:-runs/diffaug-small}
FMNIST=${FMNIST:-/usr/share/datasets/fashion-mnist}
WEIGHTS=${WEIGHTS:-features/fmnist.safetensors}
FEATURES=${FEATURES:-"--limit 10000 --epochs 2"}   # the domain classifier's budget, as eval/reproduce_fmnist.sh
SUBSET="$DATA/train-000000.tar"

[ -f "$DATA/dataset.json" ] || gvae data pack "$FMNIST" --kind idx --resolution 32 --out "$DATA" --workers 2
[ -f "$WEIGHTS" ] || gvae eval train-features --data "$DATA" --out "$WEIGHTS" $FEATURES
gvae data inspect "$SUBSET"

for seed in $SEEDS; do
  for arm in $ARMS; do
    recipe=recipes/fmnist-32-gvae.yaml
    [ "$arm" = diffaug ] && recipe=recipes/fmnist-32-gvae-diffaug.yaml
    run="$OUT/$arm-s$seed"
    [ -f "$run/results.json" ] && continue          # measured already: rerunning the script only prints the table
    gvae train "$recipe" data.train="$SUBSET" data.val="$DATA" train.seed="$seed" train.max_steps="$STEPS" \
      train.checkpoint_every="$STEPS" log.sample_every="$STEPS" --out "$run" --no-progress
    gvae eval "$run" --data "$DATA" --feature-weights "$WEIGHTS" --metrics fid,kid,memorization \
      --num-samples "$NUM_SAMPLES" --num-real "$NUM_REAL" --train-data "$SUBSET" --out "$run/results.json"
  done
done

python3 - "$OUT" "$ARMS" $SEEDS <<'PY'
import json, statistics, sys
from pathlib import Path

out, arms, seeds = Path(sys.argv[1]), sys.argv[2].split(), sys.argv[3:]
names = ("fid", "kid", "memorization")
print(f"\n{'arm':8} {'seed':>4} {'fid':>8} {'kid':>8} {'memo':>6} {'d_real_sign':>11} {'aug_p':>6}")
means = {}
for arm in arms:
    rows = []
    for seed in seeds:
        run = out / f"{arm}-s{seed}"
        metrics = json.loads((run / "results.json").read_text())["metrics"]
        last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
        row = [metrics[name]["value"] for name in names]
        rows.append(row)
        print(f"{arm:8} {seed:>4} {row[0]:8.2f} {row[1]:8.4f} {row[2]:6.3f} {last.get('d_real_sign', float('nan')):11.3f}"
              f" {last.get('aug_p', 0.0):6.3f}")
    means[arm] = [statistics.mean(column) for column in zip(*rows)]
    print(f"{arm:8} {'mean':>4} {means[arm][0]:8.2f} {means[arm][1]:8.4f} {means[arm][2]:6.3f}")
    if len(rows) > 1:
        stds = [statistics.stdev(column) for column in zip(*rows)]
        print(f"{arm:8} {'std':>4} {stds[0]:8.2f} {stds[1]:8.4f} {stds[2]:6.3f}")
if {"plain", "diffaug"} <= set(means):
    print(f"ratio: fid diffaug / plain = {means['diffaug'][0] / means['plain'][0]:.3f}")
PY
