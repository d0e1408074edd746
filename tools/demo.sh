#!/bin/sh
# demo.sh - a live local fabric on this machine: an archiver keeping every event, a DLQ keeping
# the events a handler failed on, two services publishing demo events, a subscriber writing
# every event as a JSON line to a log file, a worker whose handler fails one time in five (so
# dead letters appear, are redelivered and mostly resolved), and weft-top in the foreground
# showing the fabric live (nodes, topics, lag, archiver, DLQ). Nodes find each other through
# the default gossip seed (tcp://127.0.0.1:5670, bound by the first node to start: the
# archiver). q in weft-top, or Ctrl-C, stops it all. Without a terminal (output piped),
# weft-top prints text snapshots.
#
#   tools/demo.sh [BUILD_DIR]      (default: build; the events go to BUILD_DIR/demo-events.log,
#                                   the archive to BUILD_DIR/demo-archive, the dead letters to
#                                   BUILD_DIR/demo-dlq)
set -u
build=${1:-build}
weft="$build/tools/weft/weft"
top="$build/tools/weft-top/weft-top"
archiver="$build/nodes/archiver/weft-archiver"
dlq="$build/nodes/dlq/weft-dlq"
for p in "$weft" "$top" "$archiver" "$dlq"; do
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

# The long-lived services first: the archiver holds the gossip seed.
rm -f "$build/demo-archiver.ready"
"$archiver" --data "$build/demo-archive" --ready-file "$build/demo-archiver.ready" \
    >"$build/demo-archiver.log" 2>&1 &
pids="$pids $!"
"$dlq" --data "$build/demo-dlq" >"$build/demo-dlq.log" 2>&1 &
pids="$pids $!"
i=0
while [ ! -s "$build/demo-archiver.ready" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done

"$weft" sub '' --name printer >"$log" 2>&1 &
pids="$pids $!"
"$weft" sub task. --fail 0.2 --sub-name worker --name worker >"$build/demo-worker.log" 2>&1 &
pids="$pids $!"
"$weft" pub task.created '{"task":"{{seq}}","title":"write the report"}' \
    --name task-service --count 1000000000 --rate 10 --quiet &
pids="$pids $!"
"$weft" pub user.deleted '{"user":"{{seq}}","reason":"request"}' \
    --name user-service --count 1000000000 --rate 2 --quiet &
pids="$pids $!"
echo "demo: task-service and user-service are publishing; printer writes every event to $log;" \
    "worker fails 1 in 5 (its output: $build/demo-worker.log), weft-dlq keeps its dead letters" \
    "(weft dlq stats, weft dlq list); weft-archiver keeps everything (weft replay)" >&2
if [ -t 0 ] && [ -t 1 ]; then
    "$top" --name demo-top
else
    "$top" --name demo-top --batch -d 2
fi
