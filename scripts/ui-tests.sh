#!/usr/bin/env bash
# Browser tests of the JupyterLab sidebar (Galata/Playwright in Debian's Chromium).
# Needs the package installed in .venv (its install builds and registers the extension).
# Extra arguments go to `playwright test` (e.g. -g promote). Exit status: playwright's.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${VENV:-$root/.venv}"
ui="$root/labextension/ui-tests"
export PATH="$venv/bin:$PATH"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
unset MLFLOW_TRACKING_URI MLFLOW_REGISTRY_URI

if [ ! -x "$CHROMIUM_PATH" ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq chromium
fi

if ! jupyter labextension list 2>&1 | grep -q "jupyter-mlops.*enabled"; then
  echo "ui-tests: the jupyter-mlops lab extension is not installed in $venv;" >&2
  echo "ui-tests: run: $venv/bin/pip install -e \"$root\"" >&2
  exit 2
fi

cd "$ui"
if [ ! -d node_modules/@jupyterlab/galata ] || [ package.json -nt node_modules/.yarn-state.yml ]; then
  jlpm install
fi
mkdir -p screenshots
set +e
jlpm playwright test "$@"
status=$?
echo "ui-tests: screenshots in $ui/screenshots, report in $ui/playwright-report"
exit $status
