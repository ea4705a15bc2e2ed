#!/usr/bin/env bash
# The GPU checks of one device session, in the order that keeps the timings honest:
#
#   1. environment and a pre-flight import (exit 3 at once if that fails);
#   2. bench/train_speed.py on the still quiet GPU (l0bayes vs plain PyTorch, one MLP epoch);
#   3. the paper's MLP row (models/paper_networks.py mlp) on seeds $SEEDS, in the background;
#   4. the GPU tests (pytest -m gpu) beside them;
#   5. at $DEADLINE seconds the training runs get SIGINT, which saves a checkpoint that
#      `--resume` continues from (RESUME=1 does that on the next session).
#
# Results go to $OUT (default gpu_out): env.txt, train_speed.json, gpu_tests.log, runs.tar.gz.
#
#   OUT=gpu_out DATA=../shared/data bench/gpu_session.sh              # on a CUDA machine
#   DEVICE=cpu EPOCHS=1 DEADLINE=60 SKIP_SPEED=1 bench/gpu_session.sh # a dry run without one
#
# The README's H100 figures came from two calls: this script with DEADLINE=370 (speed, tests,
# 147 epochs), then with RESUME=1 SKIP_SPEED=1 (tests again, epochs 147-200), with pyro-ppl,
# arviz and their missing dependencies installed from wheels and MNIST copied beside the repo.
set -u
OUT=${OUT:-gpu_out}
DATA=${DATA:-../shared/data}
DEVICE=${DEVICE:-cuda}
SEEDS=${SEEDS:-0 1}
EPOCHS=${EPOCHS:-200}
DEADLINE=${DEADLINE:-400}
RESUME=${RESUME:-0}
RUNS=${RUNS:-runs/gpu}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
start=$(date +%s)
mkdir -p "$OUT" "$RUNS"

{
    date -u
    nvidia-smi -L 2>&1
    $PY -c "import torch, pyro, l0bayes; print('torch', torch.__version__, 'pyro', pyro.__version__,
'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
$PY -c "import torch, l0bayes; assert '$DEVICE' == 'cpu' or torch.cuda.is_available()" || exit 3

if [ -z "${SKIP_SPEED:-}" ]; then
    $PY bench/train_speed.py --device "$DEVICE" --threads 0 --data-dir "$DATA" --repeats 3 \
        --out "$OUT/train_speed.json" >"$OUT/train_speed.log" 2>&1
    tail -n 30 "$OUT/train_speed.log"
fi

pids=()
for seed in $SEEDS; do
    run=$RUNS/mlp-s$seed
    if [ "$RESUME" = 1 ]; then  # the run's config.json holds the device and the seed
        $PY -m l0bayes.cli train mnist-mlp --out "$run" --resume --epochs "$EPOCHS" \
            --data-dir "$DATA" --no-progress >"$run.log" 2>&1 &
    else
        $PY models/paper_networks.py mlp --out "$run" --data-dir "$DATA" --device "$DEVICE" \
            --seed "$seed" --epochs "$EPOCHS" --no-progress >"$run.log" 2>&1 &
    fi
    pids+=($!)
done

if [ -z "${SKIP_TESTS:-}" ]; then
    $PY -m pytest -m gpu -p no:cacheprovider -q -rs tests >"$OUT/gpu_tests.log" 2>&1
    tail -n 40 "$OUT/gpu_tests.log"
fi

while :; do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    if [ $(($(date +%s) - start)) -ge "$DEADLINE" ]; then
        for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null; done
        wait
        break
    fi
    sleep 2
done
for seed in $SEEDS; do
    echo "== mlp-s$seed"
    tail -n 3 "$RUNS/mlp-s$seed.log"
    tail -n 2 "$RUNS/mlp-s$seed/history.csv" 2>/dev/null
done
tar czf "$OUT/runs.tar.gz" "$RUNS"
echo "elapsed $(($(date +%s) - start)) s"
