#!/usr/bin/env bash
# Tier 2 of docs/e2e.md: kube-controller-manager, kube-scheduler, kwok GPU nodes, the real
# provider-kubernetes and our fake cloud (e2e/tier2.py). Runs when its toolchain (kwok,
# provider-kubernetes) is built; CI (CI=true) builds it when cold. Otherwise -- or with
# E2E_TIER2=skip -- it says so LOUDLY: a green `make e2e` must never be read as covering it.
#
#   e2e/tier2.sh [tier2.py flags...]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON_BIN:-$HERE/../.venv/bin/python}

skipped() {
  cat >&2 <<MSG
################################################################################################
# e2e tier 2: SKIPPED -- $1
# Only tier 1 ran: no controller-manager, scheduler, kwok GPU nodes, provider-kubernetes, and no
# DRA allocation by the real scheduler. Build it with \`make e2e-toolchain-tier2\` (docs/e2e.md).
################################################################################################
MSG
}

if [ "${E2E_TIER2:-}" = skip ]; then
  skipped "E2E_TIER2=skip was set."
  exit 0
fi
# A cold tier-2 build plus the run took ~30 min on this machine under load (docs/e2e.md): CI
# (90 min) starts it only while that much of its budget is left (.ci/run sets the start time).
CI_BUDGET_LEFT_NEEDED=${E2E_TIER2_COLD_MINUTES:-35}
if ! "$HERE/toolchain.sh" warm tier2; then
  if [ "${CI:-}" = true ] && [ -n "${MODELPLANE_CI_START:-}" ] &&
     [ $(( 90 - ($(date +%s) - MODELPLANE_CI_START) / 60 )) -lt "$CI_BUDGET_LEFT_NEEDED" ]; then
    skipped "its toolchain is cold and less than $CI_BUDGET_LEFT_NEEDED minutes of CI's 90 minutes are left."
    exit 0
  fi
  if [ "${CI:-}" = true ] || [ "${E2E_TIER2:-}" = build ]; then
    echo "[tier2] toolchain cold: building kwok and provider-kubernetes" >&2
    "$HERE/toolchain.sh" build tier2
  else
    skipped "its toolchain (kwok, provider-kubernetes) is not built in \$MODELPLANE_E2E_CACHE."
    exit 0
  fi
fi
exec "$PY" "$HERE/tier2.py" --bindir "$("$HERE/toolchain.sh" bindir)" "$@"
