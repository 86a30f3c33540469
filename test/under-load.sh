#!/usr/bin/env bash
# npm test on a busy machine: BUSY CPU-bound loops (default 2, one a core here) run beside RUNS whole
# `npm test` runs in a row (default 3), then are stopped. Prints each run's time, exit code and pass counts;
# exits non-zero if any run failed. Logs in out/under-load/.
set -uo pipefail
cd "$(dirname "$0")/.."
busy=${BUSY:-2}
runs=${RUNS:-3}
mkdir -p out/under-load
pids=()
stop() { [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null; pids=(); }
trap stop EXIT
for _ in $(seq "$busy"); do node -e 'for (;;) {}' & pids+=($!); done
echo "under load: $busy busy loops (pids ${pids[*]}), $runs runs of npm test"
failed=0
for i in $(seq "$runs"); do
  log="out/under-load/run-$i.log"
  start=$(date +%s)
  npm test >"$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  tap=$(grep -E '^# \{ total: ' "$log" | tail -1)
  py=$(grep -E '^[0-9]+ (passed|failed)' "$log" | tail -1)
  echo "run $i: exit $rc in ${secs} s; tap ${tap#\# }; pytest ${py:-(no summary)}"
  [ "$rc" -eq 0 ] || failed=1
done
stop
exit $failed
