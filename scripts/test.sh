#!/usr/bin/env bash
# `make test`: set up, then every kind of test in order. Every part runs even when an earlier one
# fails; the exit code is non-zero when any part failed (pytest's 5, "no tests ran", counts as a
# failure, so a part cannot pass by running nothing). Extra arguments go to every pytest run.
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TLW_VENV:-$REPO/.venv}"
cd "$REPO"

names=(); codes=(); times=()
run_part() {
  local name="$1"; shift
  printf '\n\033[1m===== %s: %s\033[0m\n' "$name" "$*"
  local start end code
  start=$(date +%s.%N)
  "$@"; code=$?
  end=$(date +%s.%N)
  names+=("$name"); codes+=("$code"); times+=("$(awk "BEGIN{printf \"%.1f\", $end-$start}")")
  printf '===== %s: exit %s in %s s\n' "$name" "$code" "${times[-1]}"
}

run_part "setup" bash scripts/setup.sh
if [ "${codes[0]}" != 0 ]; then
  echo "setup failed: nothing else can run" >&2
  exit 1
fi
# A module that fails to import fails its part but must not hide every other test.
PYTEST=("$VENV/bin/python" -m pytest -p no:cacheprovider --continue-on-collection-errors)
run_part "python unit tests" "${PYTEST[@]}" -m "not browser and not notebook" "$@"
run_part "js unit tests" npm test --silent
run_part "notebooks" "${PYTEST[@]}" -m notebook "$@"
run_part "browser tests" "${PYTEST[@]}" -m browser "$@"

echo
echo "===== summary"
failed=0
for i in "${!names[@]}"; do
  status=passed
  if [ "${codes[$i]}" != 0 ]; then status="FAILED (exit ${codes[$i]})"; failed=$((failed + 1)); fi
  printf '  %-20s %8s s  %s\n' "${names[$i]}" "${times[$i]}" "$status"
done
total=$(awk "BEGIN{s=0; for (i=1; i<ARGC; i++) s+=ARGV[i]; printf \"%.1f\", s}" "${times[@]}")
printf '  %-20s %8s s\n' "total" "$total"
echo "parts: $(( ${#names[@]} - failed )) passed, $failed failed"
[ "$failed" = 0 ]
