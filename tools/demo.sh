#!/bin/sh
# demo.sh - a live local fabric on this machine: two services publishing demo events and a
# subscriber printing every event as a JSON line. Nodes find each other through the default
# gossip seed (tcp://127.0.0.1:5670, bound by the first node to start). Ctrl-C stops it all.
#
#   tools/demo.sh [BUILD_DIR]      (default: build)
set -u
build=${1:-build}
weft="$build/tools/weft/weft"
if [ ! -x "$weft" ]; then
    echo "demo: $weft not found; build first (see README.md)" >&2
    exit 1
fi
pids=""
cleanup() {
    trap - EXIT INT TERM
    for p in $pids; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT INT TERM

"$weft" pub task.created '{"task":"{{seq}}","title":"write the report"}' \
    --name task-service --count 1000000000 --rate 10 --quiet &
pids="$pids $!"
"$weft" pub user.deleted '{"user":"{{seq}}","reason":"request"}' \
    --name user-service --count 1000000000 --rate 2 --quiet &
pids="$pids $!"
echo "demo: task-service and user-service are publishing; printing everything (Ctrl-C stops)" >&2
"$weft" sub '' --name printer
