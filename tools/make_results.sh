#!/usr/bin/env bash
# Regenerate the closed-loop example results notebook 05 compares by default
# (data_manifests/results/metaworld/): notebook 01 trains its default flow policy, a
# regression one and one per geometry compressor of seed 002 (pool, per_layer, qformer),
# then `nblib eval` runs them, the scripted expert and a random policy on the five
# embedded Meta-World tasks (its run time: README, Quickstart). Usage: make results
set -euo pipefail
cd "$(dirname "$0")/.."
NB=.venv/bin/nblib
OUT=data_manifests/results/metaworld
POLICIES=runs/results_policies
TASKS="reach push pick-place drawer-open button-press-topdown"
EPISODES=${EPISODES:-5}
mkdir -p "$OUT" "$POLICIES"

$NB run notebooks/01_overfit_diagnosis.ipynb --out "$POLICIES/flow"
$NB run notebooks/01_overfit_diagnosis.ipynb -p head regression --out "$POLICIES/regression"

eval_run() {  # label, then nblib eval options
  local label=$1
  shift
  $NB eval --sim metaworld --tasks $TASKS --episodes "$EPISODES" --max-steps 150 --workers 2 \
    --run "$label" --overwrite --out "$OUT/$label.csv" "$@"
}
eval_run mw-expert --policy expert
eval_run mw-random --policy random
for replan in 1 4 16; do
  eval_run "mw-flow-replan$replan" --policy "$POLICIES/flow" --replan "$replan"
done
eval_run mw-regression-replan4 --policy "$POLICIES/regression" --replan 4
eval_run mw-flow-replan4-empty --policy "$POLICIES/flow" --replan 4 --instruction empty
# seed 002's ablation, tiny: the same flow policy with geometry tokens through each compressor
for geometry in pool per_layer qformer; do
  $NB run notebooks/01_overfit_diagnosis.ipynb -p geometry "$geometry" --out "$POLICIES/geom-$geometry"
  eval_run "mw-geom-$geometry-replan4" --policy "$POLICIES/geom-$geometry" --replan 4
done
echo "results: $OUT"
