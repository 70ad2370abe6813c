# Sourced by the reproduction and benchmark scripts: train_run RECIPE RUN_DIR [KEY=VALUE ...] trains one run of
# STEPS steps. Schedules scale with the budget: KL warm-up over the first tenth, input-noise annealing over the
# first half, and the weight average over the last ~STEPS/10 updates (the recipes' 0.999 would leave a short
# run's average mostly at its initial weights).
EMA=$(python3 -c "print(min(0.999, 1 - 10 / $STEPS))")
train_run() {
  local recipe=$1 out=$2
  shift 2
  gvae train "$recipe" "$@" train.max_steps="$STEPS" loss.kl_warmup_steps=$((STEPS / 10)) \
    model.input_noise_anneal_steps=$((STEPS / 2)) train.ema_decay="$EMA" train.checkpoint_every="$STEPS" \
    log.sample_every="$STEPS" --out "$out"
}
