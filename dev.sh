#!/usr/bin/env bash
# Set-up and the two main jobs on a fresh machine:
#   bash dev.sh demo   build + install everything into .venv, then run the demo on embedded data
#                      (pretrain on the digits, probe against random init; runs/demo/)
#   bash dev.sh test   build + install everything into .venv, then run every test suite
# The virtual environment lives in $SELFSUP_VENV (default .venv); pip's cache makes re-runs quick.
set -euo pipefail
cd "$(dirname "$0")"

VENV=${SELFSUP_VENV:-.venv}
PY=python3

log() { printf '\n== %s\n' "$*" >&2; }

need_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null 2>&1 || { echo "dev.sh: a Rust toolchain (cargo) is required" >&2; exit 1; }
}

# torch and its CUDA libraries are GBs from PyPI: a dropped connection is retried, resuming the
# interrupted file, and the whole install is tried again after a pause; finished wheels come from
# pip's cache on the next try.
pip_install() {
    local attempt tries=4
    for attempt in $(seq "$tries"); do
        python -m pip install -q --resume-retries 20 "$@" && return 0
        [ "$attempt" -lt "$tries" ] || break
        log "pip install failed (try $attempt of $tries); trying again in $((attempt * 30)) s"
        sleep $((attempt * 30))
    done
    echo "dev.sh: pip install $* failed $tries times" >&2
    return 1
}

# torch with its CUDA libraries takes about 7 GB once installed, more while pip unpacks it; a full
# disk shows up in pip as a broken download, so say so first.
check_disk() {
    local free_gb
    free_gb=$(df -Pk "${TMPDIR:-/tmp}" . | awk 'NR > 1 && (min == "" || $4 < min) { min = $4 } END { print int(min / 1048576) }')
    if [ "$free_gb" -lt 10 ]; then
        echo "dev.sh: warning: only $free_gb GB free on the disk of ${TMPDIR:-/tmp} or $PWD; the install needs about 10 GB" >&2
    fi
}

setup() {
    need_rust
    check_disk
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating $VENV"
        "$PY" -m venv "$VENV"
    fi
    export PATH="$PWD/$VENV/bin:$PATH"
    log "installing build tools"
    python -m pip install -q --upgrade --retries 10 "pip>=25.1"
    pip_install "maturin>=1.9,<2" "ziglang>=0.11"
    log "building the abi3 manylinux2014 wheel (release)"
    rm -rf dist && mkdir -p dist
    maturin build --release --zig --compatibility manylinux2014 -o dist
    python -m pip wheel -q --no-deps -w dist ./kernels
    log "installing selfsup, selfsup-kernels and test tools"
    local wheel
    wheel=$(ls dist/selfsup-*.whl | grep -v kernels)
    pip_install --force-reinstall --no-deps dist/selfsup_kernels-*.whl "$wheel"
    pip_install dist/selfsup_kernels-*.whl "$wheel[test]"
}

run_tests() {
    log "cargo test (pure-Rust ops, unit + property tests)"
    cargo test -p selfsup-ops --quiet
    log "stub check: _native.pyi against the compiled module"
    python -m mypy.stubtest selfsup._native
    log "mypy --strict"
    python -m mypy
    log "pytest"
    set +e
    SELFSUP_WHEEL_DIR="$PWD/dist" python -m pytest -q "$@"
    local status=$?
    set -e
    if [ "$status" -eq 5 ]; then
        echo "dev.sh: pytest collected no tests; that is a failure" >&2
    fi
    return "$status"
}

case "${1:-}" in
    demo)
        shift
        setup
        log "selfsup demo"
        selfsup demo --out runs/demo "$@"
        ;;
    test)
        shift
        setup
        run_tests "$@"
        ;;
    *)
        echo "usage: bash dev.sh demo|test [args...]" >&2
        exit 2
        ;;
esac
