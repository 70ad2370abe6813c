#!/usr/bin/env bash
# Does the synthetic data help on the medical stand-in? Lesion-count classification of the CT-like phantoms
# (64 px; classes "0 lesions" .. "3 lesions", the phantom packer's label) with K labelled phantoms per class.
# Each model is trained class-conditionally on those K x 4 phantoms only (the GVAE with discriminator
# augmentation, recipes/phantom-64-gvae-cond-diffaug.yaml; recipes/phantom-64-gvae-cond.yaml as a conv VAE
# and as a VAE-GAN), STEPS steps, SEEDS training seeds; then `gvae eval
# --metrics utility` trains the fixed small classifier on the same K per class alone, with classic
# augmentation (shifts of up to 2 px; no flips, as anatomy has a side), with the model's samples mixed in 1:1,
# and on the samples alone (CAS), and tests it on the held-out phantoms. Prints one table; results go to OUT.
#
#   bash eval/utility_phantom.sh                           # K = 25, 600 steps, seed 0, three models
#   K=25 STEPS=1000 SEEDS="0 1" MODELS=gvae-diffaug bash eval/utility_phantom.sh
set -euo pipefail
K=${K:-25}
STEPS=${STEPS:-600}
SEEDS=${SEEDS-"0"}
MODELS=${MODELS:-"gvae-diffaug vae vaegan"}
UTILITY_SEEDS=${UTILITY_SEEDS:-3}
DATA=${DATA:-data/phantom-k$K}
OUT=${OUT:-docs/results/utility-phantom}

# 4,000 phantoms, a quarter held out (1,000 test images, never trained on); K per class kept for training
[ -f "$DATA/dataset.json" ] || gvae data pack - --kind phantom --num 4000 --val-fraction 0.25 --resolution 64 \
  --per-class "$K" --out "$DATA"
mkdir -p "$OUT"
[ -f "$OUT/real.json" ] || gvae eval utility --data "$DATA" --k "$K" --seeds "$UTILITY_SEEDS" --out "$OUT/real.json"
results=("$OUT/real.json")
for seed in $SEEDS; do
  for model in $MODELS; do
    run=runs/phantom-k$K-$model-s$seed
    out="$OUT/$model-s$seed.json"
    if [ ! -f "$out" ]; then
      case $model in
        gvae-diffaug) recipe=(recipes/phantom-64-gvae-cond-diffaug.yaml) ;;
        *) recipe=(recipes/phantom-64-gvae-cond.yaml model.kind="$model") ;;
      esac
      gvae train "${recipe[@]}" data.train="$DATA" data.val="$DATA" \
        train.seed="$seed" train.max_steps="$STEPS" train.checkpoint_every="$STEPS" log.sample_every="$STEPS" \
        train.ema_bn_images=$((K * 4)) --out "$run" --no-progress
      gvae eval "$run" --data "$DATA" --metrics utility --utility-k "$K" --utility-seeds "$UTILITY_SEEDS" \
        --out "$out"
    fi
    results+=("$out")
  done
done

python3 eval/utility_table.py "${results[@]}"
