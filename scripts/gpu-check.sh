#!/usr/bin/env bash
# The GPU check: every CUDA path of rnnbench, run once on a machine with a CUDA GPU.
#
#   scripts/gpu-check.sh [--out DIR] [--python PY] [--dry-run]
#
# Runs from the checkout with `python -m bench` (no install, no nox, no py-spy,
# no network), and writes everything under DIR (default gpu-check/):
#   summary.txt          each step, its exit code and seconds
#   modules.log          python, torch, CUDA, cuDNN and package versions
#   env.log              `bench env`: the environment and the measured roofs (compute engines, L2 and HBM bandwidth)
#   cuda-tests.log/.xml  the CUDA tests (pytest -m cuda)
#   gpu-quick.csv        the quick preset on CUDA (+ .samples.csv, .json)
#   gpu-grid.csv         the gpu preset: padded/packed/exact at GPU sizes, CUDA graphs, TF32, bf16, cuDNN off
#   gpu-onnx.csv         ONNX Runtime's CUDA provider beside the module (where onnxruntime-gpu is installed)
#   gpu-stream.csv       streaming calls, module beside its CUDA graph (--mode stream)
#   validate.log         `bench validate --device cuda`: the timer against torch.utils.benchmark
#   report/              the report of both runs (Markdown, HTML, plots)
#   profile/             torch.profiler tables and trace of one exact-mode training case
# Every step runs even if one before it failed; the exit code is 1 if any failed.
# The steps share a deadline so that the whole check ends within 8 minutes.
#
# --dry-run checks the plan on any machine, GPU or not: the modules import, every
# sweep is planned on the CPU (`--list`), the CUDA tests are collected; nothing is
# measured on a GPU.
set -u

OUT_DIR=gpu-check
PY=${PYTHON:-python3}
DRY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT_DIR=${2:?--out needs a folder}; shift 2 ;;
        --python) PY=${2:?--python needs an interpreter}; shift 2 ;;
        --dry-run) DRY=1; shift ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu-check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT_DIR" || { echo "gpu-check: cannot create $OUT_DIR" >&2; exit 2; }
OUT_DIR=$(cd "$OUT_DIR" && pwd)
cd "$REPO" || exit 2
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
SUMMARY="$OUT_DIR/summary.txt"
DEADLINE_S=420   # measuring steps stop being started after this; the report and profile get the rest
START=$(date +%s)
FAILED=0
: >"$SUMMARY"

note() { printf '%-12s %s\n' "$1" "$2" | tee -a "$SUMMARY"; }

# step NAME LIMIT_S CMD...: run CMD into NAME.log, within LIMIT_S and the deadline.
step() {
    local name=$1 limit=$2 deadline=${STEP_DEADLINE:-$DEADLINE_S}
    shift 2
    local left=$((deadline - ($(date +%s) - START)))
    if [ "$left" -le 5 ]; then
        note "$name" "not run: the check's deadline (${deadline} s) has passed"
        FAILED=1
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "[gpu-check] $name (up to ${limit} s)"
    local t0 rc
    t0=$(date +%s)
    timeout "$limit" "$@" >"$OUT_DIR/$name.log" 2>&1
    rc=$?
    [ "$rc" -eq 124 ] && echo "gpu-check: stopped after ${limit} s" >>"$OUT_DIR/$name.log"
    note "$name" "rc=$rc $(($(date +%s) - t0)) s"
    [ "$rc" -ne 0 ] && FAILED=1
    tail -n 3 "$OUT_DIR/$name.log"
}

MODULES='
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("cuda available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0), "cudnn", torch.backends.cudnn.version())
from importlib.metadata import version
for name in ("numpy", "pandas", "scipy", "matplotlib", "rich", "pytest"):
    __import__(name)
    print(name, version(name))
import bench.cli
'

# ONNX Runtime on the GPU beside the module and its CUDA graph: inference, padded and exact (packed: the reference).
ONNX_CASES="--model lstm,gru --mode inference --batch-size 16,256 --seq-len 64,256 --varlen padded,packed,exact
 --impl module,cudagraph,onnxruntime --budget-s 0.2"
# Streaming on the GPU, with and without CUDA graphs: one stream and sixteen, one token and eight per call.
STREAM_CASES="--model lstm,gru --mode stream --batch-size 1,16 --chunk 1,8 --seq-len 64 --hidden-size 512
 --impl module,cudagraph --budget-s 0.3"
HAS_ORT_CUDA='import onnx, onnxruntime; assert "CUDAExecutionProvider" in onnxruntime.get_available_providers()'

if [ "$DRY" -eq 1 ]; then
    note mode "dry run on $(hostname): plans checked on the CPU, nothing measured on a GPU"
    step modules 120 "$PY" -c "$MODULES"
    step cuda-tests 120 "$PY" -m pytest -m cuda tests -q --collect-only -p no:cacheprovider
    step quick 120 "$PY" -m bench run --preset quick --device cpu --list
    step grid 120 "$PY" -m bench run --preset gpu --device cpu --list
    step onnx 120 "$PY" -m bench run $ONNX_CASES --device cpu --list
    step stream 120 "$PY" -m bench run $STREAM_CASES --device cpu --list
    note validate "not run: needs the GPU"
    note report "not run: needs the runs"
    note profile "not run: needs the GPU"
else
    note mode "on $(hostname)"
    step modules 120 "$PY" -c "$MODULES
assert torch.cuda.is_available(), 'no CUDA GPU here'"
    step env 90 "$PY" -m bench env
    step cuda-tests 150 "$PY" -m pytest -m cuda tests -q -p no:cacheprovider --junitxml "$OUT_DIR/cuda-tests.xml"
    step quick 120 "$PY" -m bench run --preset quick --device cuda --out "$OUT_DIR/gpu-quick.csv"
    step grid 200 "$PY" -m bench run --preset gpu --out "$OUT_DIR/gpu-grid.csv"
    if "$PY" -c "$HAS_ORT_CUDA" >/dev/null 2>&1; then
        step onnx 90 "$PY" -m bench run $ONNX_CASES --device cuda --side-by-side --out "$OUT_DIR/gpu-onnx.csv"
    else
        note onnx "not run: no onnxruntime-gpu and onnx here (pip install onnxruntime-gpu onnx)"
    fi
    step stream 90 "$PY" -m bench run $STREAM_CASES --device cuda --side-by-side --out "$OUT_DIR/gpu-stream.csv"
    step validate 90 "$PY" -m bench validate --device cuda
    STEP_DEADLINE=470  # the profile took 49 s on one H200 (torch 2.11, CUPTI)
    runs=()
    for f in "$OUT_DIR/gpu-quick.csv" "$OUT_DIR/gpu-grid.csv" "$OUT_DIR/gpu-onnx.csv" "$OUT_DIR/gpu-stream.csv"; do [ -s "$f" ] && runs+=("$f"); done
    if [ ${#runs[@]} -gt 0 ]; then
        step report 60 "$PY" -m bench report "${runs[@]}" --out "$OUT_DIR/report"
    else
        note report "not run: no run wrote a CSV"
        FAILED=1
    fi
    # Without --device: one case on the GPU (a GPU machine must not make it two).
    step profile 120 "$PY" -m bench profile --model lstm --varlen exact --mode training --batch-size 64 \
        --seq-len 128 --bidirectional true --num-layers 2 --torch --out "$OUT_DIR/profile"
fi

note total "$(($(date +%s) - START)) s, $([ "$FAILED" -eq 0 ] && echo 'every step passed' || echo 'some step FAILED')"
exit "$FAILED"
