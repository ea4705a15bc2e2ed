#!/usr/bin/env bash
# The 200-epoch MNIST-MLP comparison (issue 26) as ONE command on one H200, within 10 minutes:
#
#   L0 over λ ∈ {0.1, 0.3, 1, 3} with a 10-epoch λ warm-up and 10 epochs of fine-tuning, the dense
#   network (λ = 0), L0 at four Lagrangian targets, one-shot magnitude pruning (+ 10 epochs of
#   fine-tuning) and gradual magnitude pruning at each λ's matched sparsity, Sparse VD; 2 seeds.
#   Every method trains on the GPU, stacked, each step replayed from a captured CUDA graph
#   (analysis/compare_networks.py --device cuda).
#
# Writes into $RESULTS (default $OUT/compare, at most 8 files): results.csv, summary.md,
# summary.tex, pareto.png, compare.log, env.txt and runs.tar.gz (config, history and metrics of
# every L0 run; no checkpoints). The work folder $WORK keeps everything else.
#
#   bench/gpu_prepare.sh                         # here, once: wheels into .whl, MNIST into .gpu
#   device run, carry [".whl", ".gpu"]:  bench/gpu_compare.sh
#   a CPU dry run with a tiny configuration (a few hundred images, one epoch):
#   DEVICE=cpu DATASET=synthetic TRAIN_SIZE=300 TEST_SIZE=100 EPOCHS=1 SEEDS=1 WARMUP=0 \
#       L0_FINETUNE=1 FINETUNE=1 RESULTS=/tmp/cmp-dry WORK=/tmp/cmp-dry-work bench/gpu_compare.sh
#
# $DEADLINE (default 560 s) stops the study with SIGINT: its L0 sweeps checkpoint, and the same
# command with the same $WORK resumes them (finished runs are reused).
set -u
set -o pipefail
RESULTS=${RESULTS:-${OUT:-gpu_out}/compare}
WORK=${WORK:-/tmp/l0bayes-compare}
DATA=${DATA:-.gpu/mnist}
DEVICE=${DEVICE:-cuda}
DATASET=${DATASET:-mnist}
EPOCHS=${EPOCHS:-200}
SEEDS=${SEEDS:-2}
LAMS=${LAMS:-0.1 0.3 1 3}
TARGETS=${TARGETS:-0.02 0.05 0.1 0.3}
WARMUP=${WARMUP:-10}
L0_FINETUNE=${L0_FINETUNE:-10}
FINETUNE=${FINETUNE:-10}
DEADLINE=${DEADLINE:-560}
PY=${PY:-python3}
start=$(date +%s)

if ls .whl/*.whl >/dev/null 2>&1; then  # the device image lacks Pyro and ArviZ
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 3
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$RESULTS" "$WORK"
{
    date -u
    nvidia-smi -L 2>&1
    $PY -c "import torch, pyro, l0bayes; print('torch', torch.__version__, 'pyro', pyro.__version__,
'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"
} >"$RESULTS/env.txt" 2>&1
cat "$RESULTS/env.txt"
$PY -c "import torch, pyro, l0bayes; assert '$DEVICE' == 'cpu' or torch.cuda.is_available()" || exit 3

sizes=()
[ -n "${TRAIN_SIZE:-}" ] && sizes+=(--train-size "$TRAIN_SIZE")
[ -n "${TEST_SIZE:-}" ] && sizes+=(--test-size "$TEST_SIZE")
# shellcheck disable=SC2086  # LAMS and TARGETS are lists
timeout -s INT "$DEADLINE" $PY analysis/compare_networks.py --device "$DEVICE" \
    --dataset "$DATASET" --data-dir "$DATA" "${sizes[@]}" --epochs "$EPOCHS" --seeds "$SEEDS" \
    --lams $LAMS --targets $TARGETS --lam-warmup "$WARMUP" --l0-finetune-epochs "$L0_FINETUNE" \
    --fine-tune-epochs "$FINETUNE" --out-dir "$WORK" 2>&1 | tee "$RESULTS/compare.log"
status=$?
for name in results.csv summary.md summary.tex pareto.png; do
    [ -f "$WORK/$name" ] && cp "$WORK/$name" "$RESULTS/"
done
[ -d "$WORK/runs" ] && tar czf "$RESULTS/runs.tar.gz" -C "$WORK" --exclude='*.pt' runs
echo "elapsed $(($(date +%s) - start)) s, exit $status" | tee -a "$RESULTS/compare.log"
exit "$status"
