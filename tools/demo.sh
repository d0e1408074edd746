#!/bin/sh
# demo.sh - a live local fabric on this machine: two services publishing demo events, a
# subscriber writing every event as a JSON line to a log file, and weft-top in the foreground
# showing the fabric live (nodes, topics, lag, ...). Nodes find each other through the default
# gossip seed (tcp://127.0.0.1:5670, bound by the first node to start). q in weft-top, or
# Ctrl-C, stops it all. Without a terminal (output piped), weft-top prints text snapshots.
#
#   tools/demo.sh [BUILD_DIR]      (default: build; the events go to BUILD_DIR/demo-events.log)
set -u
build=${1:-build}
weft="$build/tools/weft/weft"
top="$build/tools/weft-top/weft-top"
for p in "$weft" "$top"; do
    if [ ! -x "$p" ]; then
        echo "demo: $p not found; build first (see README.md)" >&2
        exit 1
    fi
done
log="$build/demo-events.log"
pids=""
cleanup() {
    trap - EXIT INT TERM
    for p in $pids; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT INT TERM

"$weft" sub '' --name printer >"$log" 2>&1 &
pids="$pids $!"
"$weft" pub task.created '{"task":"{{seq}}","title":"write the report"}' \
    --name task-service --count 1000000000 --rate 10 --quiet &
pids="$pids $!"
"$weft" pub user.deleted '{"user":"{{seq}}","reason":"request"}' \
    --name user-service --count 1000000000 --rate 2 --quiet &
pids="$pids $!"
echo "demo: task-service and user-service are publishing; printer writes every event to $log" >&2
if [ -t 0 ] && [ -t 1 ]; then
    "$top" --name demo-top
else
    "$top" --name demo-top --batch -d 2
fi
