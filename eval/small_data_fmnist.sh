#!/usr/bin/env bash
# Does the synthetic data help on a small labelled set? Fashion-MNIST with K = 10 labelled images per class
# (100 in all; the held-out split is the official 10,000 test images). Three class-conditional models are
# trained on those 100 images only (the GVAE with discriminator augmentation, the conv VAE, the VAE-GAN), the
# same budget of STEPS steps of 64 images, SEEDS training seeds each; then `gvae eval --metrics utility` scores
# each at K = 10 on the same 100 images: the classifier trained on them alone, with classic augmentation,
# with the model's samples mixed in, and on the samples alone (CAS). Prints one table.
#
#   bash eval/small_data_fmnist.sh                       # 300 steps, seed 0
#   STEPS=1000 SEEDS="0 1" bash eval/small_data_fmnist.sh
#   SEEDS=1 MODELS=gvae-diffaug bash eval/small_data_fmnist.sh   # one model; results already in OUT are kept
#   MODELS=gvae-diffaug TAG=-class-prior SET=model.class_prior=true bash eval/small_data_fmnist.sh  # overrides,
#                                                        # runs and results named gvae-diffaug-class-prior
set -euo pipefail
STEPS=${STEPS:-300}
SEEDS=${SEEDS-"0"}
K=${K:-10}
MODELS=${MODELS:-"gvae-diffaug vae vaegan"}
UTILITY_SEEDS=${UTILITY_SEEDS:-3}
DATA=${DATA:-data/fmnist-k$K}
OUT=${OUT:-docs/results/small-data}
FMNIST=${FMNIST:-/usr/share/datasets/fashion-mnist}
SET=${SET:-}
TAG=${TAG:-}

[ -f "$DATA/dataset.json" ] || gvae data pack "$FMNIST" --kind idx --resolution 32 --per-class "$K" --out "$DATA" \
  --workers 2
mkdir -p "$OUT"
[ -f "$OUT/real.json" ] || gvae eval utility --data "$DATA" --k "$K" --seeds "$UTILITY_SEEDS" --out "$OUT/real.json"
results=("$OUT/real.json")
for seed in $SEEDS; do
  for model in $MODELS; do
    name=$model$TAG
    run=runs/small-k$K-$name-s$seed
    results+=("$OUT/$name-s$seed.json")
    [ -f "$OUT/$name-s$seed.json" ] && continue   # measured already (delete the file to measure again)
    gvae train "recipes/fmnist-32-$model.yaml" model.conditional=true $SET data.train="$DATA" data.val="$DATA" \
      train.seed="$seed" train.max_steps="$STEPS" train.checkpoint_every="$STEPS" log.sample_every="$STEPS" \
      train.ema_bn_images=100 --out "$run" --no-progress
    gvae eval "$run" --data "$DATA" --metrics utility --utility-k "$K" --utility-seeds "$UTILITY_SEEDS" \
      --out "$OUT/$name-s$seed.json"
  done
done

python3 eval/utility_table.py "${results[@]}"
