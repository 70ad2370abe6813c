#!/usr/bin/env bash
# Downstream utility on Fashion-MNIST (Classification Accuracy Score, Ravuri & Vinyals 2019): held-out accuracy
# of a fixed small CNN trained on K = 10 and 100 real images per class, alone and with classic augmentation
# (no model needed), and, for each run directory given, with that model's own images mixed in (the gain over
# both, with its standard error) or alone (CAS).
#
#   bash eval/utility_fmnist.sh                                                # the real baselines
#   bash eval/utility_fmnist.sh runs/fmnist-32-gvae-s0 runs/fmnist-32-vae-s0   # and each model
#   K=10 SEEDS=5 MIX=0.5 bash eval/utility_fmnist.sh runs/fmnist-32-gvae-s0
#
# Needs `apt-get install dataset-fashion-mnist` (or FMNIST=dir with the four IDX files). Writes one
# results.json per source under OUT and prints a summary table.
set -euo pipefail
K=${K:-10,100}
SEEDS=${SEEDS:-3}
MIX=${MIX:-1.0}
OUT=${OUT:-docs/results/utility}
FMNIST=${FMNIST:-/usr/share/datasets/fashion-mnist}

[ -f data/fmnist/dataset.json ] || gvae data pack "$FMNIST" --kind idx --resolution 32 --out data/fmnist --workers 2
mkdir -p "$OUT"
[ -f "$OUT/real.json" ] || gvae eval utility --data data/fmnist --k "$K" --seeds "$SEEDS" --out "$OUT/real.json"
results=("$OUT/real.json")
for run in "$@"; do
  out="$OUT/$(basename "$run").json"
  gvae eval "$run" --data data/fmnist --metrics utility --utility-k "$K" --utility-seeds "$SEEDS" \
    --utility-mix-ratio "$MIX" --out "$out"
  results+=("$out")
done

python3 - "${results[@]}" <<'PY'
import json, sys
print("| source | utility metric | accuracy | ± |\n|---|---|---|---|")
for path in sys.argv[1:]:
    doc = json.load(open(path))
    source = "real images only" if path.endswith("/real.json") else doc["checkpoint"]
    for name, entry in doc["metrics"].items():
        if source != "real images only" and ("_real_" in name or "_classic_" in name):
            continue  # the same for every model: shown once, from real.json
        spread = "" if entry["std"] is None else f"{entry['std']:.3f} ({entry['std_of'].split(' over')[0]})"
        print(f"| {source} | {name} | {entry['value']:.4f} | {spread} |")
PY
