#!/usr/bin/env bash
# The GPU speed figures of issue 26 besides the comparison (bench/gpu_compare.sh), one command:
#
#   1. bench/stack_speed.py: 1, 16 and 64 stacked MNIST MLPs, seconds per step of the engine's
#      captured step against the plain-PyTorch CUDA-graph stack (targets: 64 within 1.3x of
#      it, 200 epochs of 64 in at most 3 minutes);
#   2. `l0bayes train mnist-mlp --device cuda` for $TRAIN_EPOCHS epochs, timed (200: the
#      target of at most 90 s; fewer are extrapolated by the log's train_seconds);
#   3. `l0bayes sweep lenet5` of 16 networks for $LENET_EPOCHS epochs (target: 200 epochs in at
#      most 10 minutes; extrapolated);
#   4. the GPU tests (pytest -m gpu).
#
# Writes into $RESULTS (default $OUT/speed): env.txt, stack_speed.json, train.log, lenet.log,
# gpu_tests.log.
#
#   bench/gpu_prepare.sh                          # here, once: wheels into .whl, MNIST into .gpu
#   device run, carry [".whl", ".gpu"]:  bench/gpu_speed.sh
#   DEVICE=cpu STEPS=3 NETWORKS="1 2" NUM_DATA=300 TRAIN_EPOCHS=1 LENET_EPOCHS=1 LENET_NETWORKS=2 \
#       DATA_ARGS="--dataset synthetic --train-size 200 --test-size 100" SKIP_TESTS=1 \
#       RESULTS=/tmp/speed-dry bench/gpu_speed.sh        # a CPU dry run
set -u
RESULTS=${RESULTS:-${OUT:-gpu_out}/speed}
DEVICE=${DEVICE:-cuda}
DATA_ARGS=${DATA_ARGS:---data-dir .gpu/mnist}
NETWORKS=${NETWORKS:-1 16 64}
STEPS=${STEPS:-600}
NUM_DATA=${NUM_DATA:-60000}
TRAIN_EPOCHS=${TRAIN_EPOCHS:-20}
LENET_EPOCHS=${LENET_EPOCHS:-5}
LENET_NETWORKS=${LENET_NETWORKS:-16}
PY=${PY:-python3}
WORK=${WORK:-/tmp/l0bayes-speed}
start=$(date +%s)

if ls .whl/*.whl >/dev/null 2>&1; then  # the device image lacks Pyro and ArviZ
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 3
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$RESULTS"
rm -rf "$WORK"
{
    date -u
    nvidia-smi -L 2>&1
    $PY -c "import torch, pyro, l0bayes; print('torch', torch.__version__, 'pyro', pyro.__version__,
'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"
} >"$RESULTS/env.txt" 2>&1
cat "$RESULTS/env.txt"
$PY -c "import torch, pyro, l0bayes; assert '$DEVICE' == 'cpu' or torch.cuda.is_available()" || exit 3

# shellcheck disable=SC2086  # NETWORKS and DATA_ARGS are lists
$PY bench/stack_speed.py --device "$DEVICE" --networks $NETWORKS --steps "$STEPS" \
    --num-data "$NUM_DATA" --repeats 2 --out "$RESULTS/stack_speed.json"

# shellcheck disable=SC2086
/usr/bin/time -p $PY -m l0bayes.cli train mnist-mlp --device "$DEVICE" $DATA_ARGS \
    --epochs "$TRAIN_EPOCHS" --out "$WORK/train" --no-progress >"$RESULTS/train.log" 2>&1
tail -n 12 "$RESULTS/train.log"

lams=$($PY -c "print(' '.join(f'{0.05 * (k + 1):g}' for k in range($LENET_NETWORKS)))")
# shellcheck disable=SC2086
/usr/bin/time -p $PY -m l0bayes.cli sweep lenet5 --device "$DEVICE" $DATA_ARGS --lam $lams \
    --seeds 0 --epochs "$LENET_EPOCHS" --out "$WORK/lenet" --no-progress \
    >"$RESULTS/lenet.log" 2>&1
tail -n 6 "$RESULTS/lenet.log"

if [ -z "${SKIP_TESTS:-}" ]; then
    $PY -m pytest -m gpu -p no:cacheprovider -q -rs tests >"$RESULTS/gpu_tests.log" 2>&1
    tail -n 20 "$RESULTS/gpu_tests.log"
fi
echo "elapsed $(($(date +%s) - start)) s"
