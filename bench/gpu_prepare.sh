#!/usr/bin/env bash
# Prepare, on THIS machine (pip and ../shared/data at hand), what a GPU command carries:
#
#   .whl/       the wheels the device image lacks: pyro-ppl, pyro-api, arviz, platformdirs,
#               xarray-einstats, h5netcdf (the versions of this checkout's .venv; pure Python)
#   .gpu/mnist/ the four MNIST files (the device reaches nothing outside the machine)
#
# Both folders are added to the repository's info/exclude (never committed). Then call the
# device with carry [".whl", ".gpu"] and the command `bench/gpu_compare.sh` (or
# `bench/gpu_session.sh`). About 14 MiB travel.
#
#   bench/gpu_prepare.sh                      # PY=.venv/bin/python DATA=../shared/data
set -eu
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data}
exclude=$(git rev-parse --git-path info/exclude)
for folder in /.whl/ /.gpu/; do
    grep -qxF "$folder" "$exclude" 2>/dev/null || echo "$folder" >>"$exclude"
done
names="pyro-ppl pyro-api arviz platformdirs xarray-einstats h5netcdf"
pins=$($PY -c "import importlib.metadata as m, sys
print(' '.join(f'{n}=={m.version(n)}' for n in sys.argv[1:]))" $names)
mkdir -p .whl .gpu/mnist
rm -f .whl/*.whl
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl $pins
cp -f "$DATA"/mnist/*-ubyte.gz .gpu/mnist/
ls -l .whl .gpu/mnist
du -sh .whl .gpu
