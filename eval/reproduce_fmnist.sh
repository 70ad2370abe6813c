#!/usr/bin/env bash
# Reproduce the Fashion-MNIST leaderboard: pack, train the domain feature network, train every model with the
# same budget (the same number of images seen), evaluate them under one protocol.
#
#   bash eval/reproduce_fmnist.sh                       # the CPU-sized budget of docs/RESULTS.md
#   STEPS=20000 SEEDS="0 1" LATENTS="100 1000" SUITE=eval/suites/fmnist.yaml bash eval/reproduce_fmnist.sh
#                                                       # the full protocol
#
# Needs `apt-get install dataset-fashion-mnist` (or FMNIST=dir with the four IDX files).
set -euo pipefail
STEPS=${STEPS:-300}
SEEDS=${SEEDS-"0 1"}
KINDS=${KINDS:-"gvae vae vae-dense vaegan"}
LATENTS=${LATENTS-"100 1000"}                     # GVAE latent sizes for the paper's latent comparison
SUITE=${SUITE:-eval/suites/fmnist-small.yaml}
OUT=${OUT:-docs/results/fmnist}
FMNIST=${FMNIST:-/usr/share/datasets/fashion-mnist}
FEATURES=${FEATURES:-"--limit 10000 --epochs 2"}   # the domain classifier's budget; "" for the full train split

[ -f data/fmnist/dataset.json ] || gvae data pack "$FMNIST" --kind idx --resolution 32 --out data/fmnist --workers 2
[ -f features/fmnist.safetensors ] || gvae eval train-features --data data/fmnist --out features/fmnist.safetensors $FEATURES

# One run of the budget: train_run RECIPE RUN_DIR [KEY=VALUE ...]. Schedules scale with the budget: KL warm-up
# over the first tenth, input-noise annealing over the first half, and the weight average over the last
# ~STEPS/10 updates (the recipes' 0.999 would leave a short run's average mostly at its initial weights).
EMA=$(python3 -c "print(min(0.999, 1 - 10 / $STEPS))")
train_run() {
  local recipe=$1 out=$2
  shift 2
  gvae train "$recipe" "$@" train.max_steps="$STEPS" loss.kl_warmup_steps=$((STEPS / 10)) \
    model.input_noise_anneal_steps=$((STEPS / 2)) train.ema_decay="$EMA" train.checkpoint_every="$STEPS" \
    log.sample_every="$STEPS" --out "$out"
}
for seed in $SEEDS; do
  for kind in $KINDS; do
    train_run "recipes/fmnist-32-$kind.yaml" "runs/fmnist-32-$kind-s$seed" train.seed="$seed"
  done
  for latent in $LATENTS; do
    train_run recipes/fmnist-32-gvae.yaml "runs/fmnist-32-gvae-z$latent-s$seed" train.seed="$seed" \
      model.latent_dim="$latent"
  done
done
gvae leaderboard "$SUITE" --out "$OUT"
