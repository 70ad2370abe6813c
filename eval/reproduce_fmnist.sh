#!/usr/bin/env bash
# Reproduce the Fashion-MNIST leaderboard: pack, train the domain feature network, train every model with the
# same budget (the same number of images seen), train the GVAE once more for the wall-clock time the conv VAE
# took, evaluate them all under one protocol.
#
#   bash eval/reproduce_fmnist.sh                       # one epoch per model, 2 seeds: hours on 2 CPU cores
#   STEPS=20000 SEEDS="0 1" LATENTS="100 1000" SUITE=eval/suites/fmnist.yaml bash eval/reproduce_fmnist.sh
#                                                       # the full protocol
#
# Needs `apt-get install dataset-fashion-mnist` (or FMNIST=dir with the four IDX files).
set -euo pipefail
STEPS=${STEPS:-938}                               # 938 x 64 = 60,032 images: one epoch of the training split
SEEDS=${SEEDS-"0 1"}
KINDS=${KINDS:-"gvae vae vae-dense vaegan"}
LATENTS=${LATENTS-""}                             # GVAE latent sizes for the paper's latent comparison
SUITE=${SUITE:-eval/suites/fmnist-small.yaml}
OUT=${OUT:-docs/results/fmnist}
FMNIST=${FMNIST:-/usr/share/datasets/fashion-mnist}
FEATURES=${FEATURES:-"--limit 10000 --epochs 2"}   # the domain classifier's budget; "" for the full train split

[ -f data/fmnist/dataset.json ] || gvae data pack "$FMNIST" --kind idx --resolution 32 --out data/fmnist --workers 2
[ -f features/fmnist.safetensors ] || gvae eval train-features --data data/fmnist --out features/fmnist.safetensors $FEATURES

# One run of a budget: train_run RECIPE RUN_DIR STEPS [KEY=VALUE ...]. The recipes' schedules scale with
# train.max_steps: KL warm-up over the first tenth, input-noise annealing over the first half, and a weight
# average whose half-life is a twentieth of the run.
train_run() {
  local recipe=$1 out=$2 steps=$3
  shift 3
  gvae train "$recipe" "$@" train.max_steps="$steps" train.checkpoint_every="$steps" \
    log.sample_every="$steps" --out "$out"
}
# the GVAE's steps that take as long as STEPS conv VAE steps, timed side by side (the suite's equal-time entry)
GVAE_EQUAL_STEPS=$(python eval/equal_time_steps.py recipes/fmnist-32-gvae.yaml recipes/fmnist-32-vae.yaml "$STEPS")
echo "GVAE steps in the conv VAE's time for $STEPS steps: $GVAE_EQUAL_STEPS"
for seed in $SEEDS; do
  for kind in $KINDS; do
    train_run "recipes/fmnist-32-$kind.yaml" "runs/fmnist-32-$kind-s$seed" "$STEPS" train.seed="$seed"
  done
  # ablation: the conv VAE with the GVAE's posterior-mean standardisation, to separate what it brings
  train_run recipes/fmnist-32-vae.yaml "runs/fmnist-32-vae-ln-s$seed" "$STEPS" train.seed="$seed" model.latent_norm=true
  # ablation: the GVAE without the reconstruction in the discriminator's features
  train_run recipes/fmnist-32-gvae.yaml "runs/fmnist-32-gvae-nofm-s$seed" "$STEPS" train.seed="$seed" \
    loss.feature_matching=false
  train_run recipes/fmnist-32-gvae.yaml "runs/fmnist-32-gvae-time-s$seed" "$GVAE_EQUAL_STEPS" train.seed="$seed"
  for latent in $LATENTS; do
    train_run recipes/fmnist-32-gvae.yaml "runs/fmnist-32-gvae-z$latent-s$seed" "$STEPS" train.seed="$seed" \
      model.latent_dim="$latent"
  done
done
gvae leaderboard "$SUITE" --out "$OUT"
