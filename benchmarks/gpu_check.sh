#!/usr/bin/env bash
# The GPU check, for a lent device machine (one GPU, a few minutes): run from the repository root.
#   1. the Triton kernels un-interpreted against the reference (fp32/bf16/fp16, forward and backward);
#   2. the NT-Xent benchmark at 2N = 8192 … 65536, D = 128 and 256: TFLOP/s forward and backward,
#      speed-up over eager naive and over torch.compile of the naive loss, peak extra memory.
# selfsup-kernels is pure Python: the wheel built here (dist/selfsup_kernels-*.whl, from
# `bash dev.sh test` or `pip wheel ./kernels`) is used when present, else the kernels/ sources.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
wheel=$(ls dist/selfsup_kernels-*.whl 2>/dev/null | head -n 1 || true)
if [ -n "$wheel" ]; then
    "$PY" -m pip install -q --no-deps --no-index --target "$site" "$wheel"
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    echo "gpu_check: selfsup-kernels from $wheel"
else
    export PYTHONPATH="$PWD/kernels${PYTHONPATH:+:$PYTHONPATH}"
    echo "gpu_check: selfsup-kernels from kernels/"
fi
unset TRITON_INTERPRET
"$PY" -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
status=0
"$PY" benchmarks/gpu_check.py || status=$?
"$PY" benchmarks/bench_loss.py --device cuda --sizes 8192 16384 32768 65536 --dim 128 256 --repeat 3 || status=$?
exit "$status"
