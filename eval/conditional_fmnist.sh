#!/usr/bin/env bash
# Does the label steer a conditional GVAE? Train recipes/fmnist-32-gvae-cond.yaml on Fashion-MNIST for STEPS
# steps of 64 images (default 937: one epoch), then ask for PER_CLASS samples of every class and let the
# domain classifier (trained on real images) say which class each one shows. Writes the per-class accuracy,
# the samples' quality (domain FID/KID, precision/recall, MS-SSIM diversity, class mix and agreement of 2,000
# samples against 2,000 test images) and a sample grid.
#
#   bash eval/conditional_fmnist.sh                      # one epoch, seeds 0 and 1
#   STEPS=400 TAG=-prior bash eval/conditional_fmnist.sh # the budget docs/RESULTS.md reports; runs and results
#                                                        # named -prior, beside earlier ones
#   STEPS=400 TAG=-cvae SET=model.class_prior=false bash eval/conditional_fmnist.sh   # recipe overrides
#   STEPS=400 LR=1e-3 bash eval/conditional_fmnist.sh    # both players' learning rate (the recipe's: 1e-3, 2e-4)
set -euo pipefail
STEPS=${STEPS:-937}
SEEDS=${SEEDS-"0 1"}
PER_CLASS=${PER_CLASS:-500}
OUT=${OUT:-docs/results/conditional}
FMNIST=${FMNIST:-/usr/share/datasets/fashion-mnist}
WEIGHTS=${WEIGHTS:-features/fmnist.safetensors}
LR=${LR:-}
SET=${SET:-}
TAG=${TAG-${LR:+-lr$LR}}

[ -f data/fmnist/dataset.json ] || gvae data pack "$FMNIST" --kind idx --resolution 32 --out data/fmnist --workers 2
[ -f "$WEIGHTS" ] || gvae eval train-features --data data/fmnist --out "$WEIGHTS" --limit 10000 --epochs 2
mkdir -p "$OUT"
for seed in $SEEDS; do
  run=runs/fmnist-32-gvae-cond$TAG-s$seed
  gvae train recipes/fmnist-32-gvae-cond.yaml train.seed="$seed" train.max_steps="$STEPS" \
    train.checkpoint_every="$STEPS" log.sample_every="$STEPS" ${LR:+optim.lr=$LR optim.d_lr=$LR} $SET \
    --out "$run" --no-progress
  python eval/class_accuracy.py "$run" --feature-weights "$WEIGHTS" --per-class "$PER_CLASS" \
    --out "$OUT/class_accuracy$TAG-s$seed.json" --grid "$OUT/grids/fmnist-32-gvae-cond$TAG-s$seed.png"
  gvae eval run "$run" --data data/fmnist --metrics fid,kid,prc,msssim,classes --feature-weights "$WEIGHTS" \
    --num-samples 2000 --num-real 2000 --out "$OUT/quality$TAG-s$seed.json"
  gvae report "$run" --out "$run/report.html" >/dev/null
done
