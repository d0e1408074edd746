#!/bin/sh
# test_archive_cli.sh - `weft replay`, `weft get` and `weft archive info` against a real
# weft-archiver: the archiver is found through gossip; every selection (offsets, time, topic,
# source, limit, id) returns exactly the expected events; --follow prints events archived after
# it started and stops on SIGINT with status 0; a missing archiver or event gives status 1 and
# says why. Ports are ephemeral; only the processes started here are killed.
#
# Other fabrics may run on this machine, and a node that binds a TCP port a dead node of theirs
# used gets their traffic (ZeroMQ reconnects to it forever). So the nodes started here bind
# their SUB sockets on ipc:// paths in the test's directory, the archiver has a name of its own
# that the lookups ask for (--archiver-name), and it archives only this test's topics (acli.*).
#
#   test_archive_cli.sh PATH/TO/weft PATH/TO/weft-archiver
set -u
weft=$1
archiver=$2
dir=$(mktemp -d /tmp/weft-archive-cli.XXXXXX)
pids=""
fail=0
cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$dir"
}
trap cleanup EXIT
# Heartbeats every 200 ms: peers (the archiver above all) are seen up sooner.
WEFT_HEARTBEAT_INTERVAL=200
export WEFT_HEARTBEAT_INTERVAL

check() { # check DESCRIPTION COMMAND...
    desc=$1; shift
    if "$@"; then echo "ok  : $desc"; else echo "FAIL: $desc"; fail=1; fi
}

wait_file() { # wait_file PATH SECONDS
    i=0
    while [ ! -s "$1" ] && [ $i -lt $(($2 * 20)) ]; do sleep 0.05; i=$((i + 1)); done
    [ -s "$1" ]
}

lines() { # lines FILE: number of lines
    wc -l <"$1" | tr -d ' '
}

offsets() { # offsets FILE: the "offset" of each line, one per line
    sed -n 's/^{"offset":\([0-9]*\),.*/\1/p' "$1"
}

aname="archiver-cli-test-$$"
# 1. The archiver holds a gossip seed on a free port (or on an ephemeral one it reports).
free_port='import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
port=""
if command -v python3 >/dev/null 2>&1; then
    port=$(python3 -c "$free_port" 2>/dev/null)
fi
if [ -n "$port" ]; then
    seed="tcp://127.0.0.1:$port"
    seedopts="--seed $seed --gossip-bind $seed"
else
    seed=""
    seedopts="--seed none --gossip-bind tcp://127.0.0.1:*"
fi
# (set -f: the * above is for the archiver, not for the shell)
set -f
"$archiver" --data "$dir/archive" --name "$aname" --prefix acli. $seedopts \
    --bind "ipc://$dir/archiver.sub" --ready-file "$dir/ready" \
    >"$dir/archiver.out" 2>"$dir/archiver.err" &
set +f
arch=$!; pids="$pids $arch"
check "weft-archiver starts and serves" wait_file "$dir/ready" 10
if [ ! -s "$dir/ready" ]; then
    cat "$dir/archiver.err"
    exit 1
fi
if [ -z "$port" ]; then
    seed=$(sed -n 's/.*gossip seed \(tcp:[^ ,]*\).*/\1/p' "$dir/archiver.err" | head -n 1)
fi
check "the gossip seed is known ($seed)" test -n "$seed"
svc=$(cat "$dir/ready")
# (--wait: an upper bound; a lookup usually takes a few hundred ms)
node="--seed $seed --gossip-bind none --bind ipc://$dir/lookup.sub --archiver-name $aname"
node="$node --wait 10"
pubnode="--seed $seed --gossip-bind none --bind ipc://$dir/pub.sub"

# 2. Two publishers, one topic each, 50 events each.
"$weft" pub acli.task.created '{"n":"{{seq}}"}' --count 50 $pubnode --name pub-a --linger 1 --quiet
check "publisher a exits 0" test $? -eq 0
"$weft" pub acli.user.deleted '{"u":"{{seq}}"}' --count 50 $pubnode --name pub-b --linger 1 --quiet
check "publisher b exits 0" test $? -eq 0

# 3. archive info --json, polled (at most 15 s) until the 100 events are committed; found
#    through gossip once, then at its endpoint.
"$weft" archive info --json $node >"$dir/info.json" 2>"$dir/info.err"
check "archive info --json finds the archiver and exits 0" test $? -eq 0
deadline=$(($(date +%s) + 15))
while ! grep -q '"events":100,' "$dir/info.json" && [ "$(date +%s)" -lt $deadline ]; do
    sleep 0.25
    "$weft" archive info --json --archiver "$svc" --timeout 2 >"$dir/info.json" 2>"$dir/info.err"
done
check "archive info --json reports 100 events" grep -q '"events":100,' "$dir/info.json"
check "archive info --json reports offsets 1..100" \
    grep -q '"first_offset":1,"last_offset":100,' "$dir/info.json"
check "archive info --json has the ingest counters" \
    grep -q '"ingest":{"ingested":100,' "$dir/info.json"
"$weft" archive info $node >"$dir/info.txt" 2>&1
check "archive info (text) exits 0" test $? -eq 0
check "archive info (text) shows the events" grep -q '^events  *100$' "$dir/info.txt"
check "archive info (text) shows the sources" grep -q '^sources  *2$' "$dir/info.txt"

# 4. Replay selections.
"$weft" replay $node >"$dir/all" 2>"$dir/all.err"
check "replay exits 0" test $? -eq 0
check "replay prints 100 lines" test "$(lines "$dir/all")" -eq 100
seq 1 100 >"$dir/expected"
offsets "$dir/all" >"$dir/got"
check "replay offsets are 1..100 in order" cmp -s "$dir/expected" "$dir/got"
line1='{"offset":1,"topic":"acli.task.created","id":"[0-9a-f-]*","src":"pub-a","inst":[0-9]*,'
line1=$line1'"seq":1,"ts":[0-9]*,"recv_ts":[0-9]*,"ver":1,"payload":{"n":1}}'
check "replay lines carry the keys of weft sub and recv_ts" \
    grep -q "^$line1\$" "$dir/all"

"$weft" replay $node --topic acli.user. >"$dir/topic"
check "--topic: 50 lines" test "$(lines "$dir/topic")" -eq 50
check "--topic: only that topic" test "$(grep -c '"topic":"acli.user.deleted"' "$dir/topic")" -eq 50

"$weft" replay $node --source pub-a >"$dir/source"
check "--source: 50 lines" test "$(lines "$dir/source")" -eq 50
check "--source: only that publisher" test "$(grep -c '"src":"pub-a"' "$dir/source")" -eq 50

"$weft" replay $node --limit 5 >"$dir/limit"
check "--limit 5: offsets 1..5" test "$(offsets "$dir/limit" | tr '\n' ' ')" = "1 2 3 4 5 "

"$weft" replay --archiver "$svc" --from 51 >"$dir/from"
check "--from 51 (with --archiver): 50 lines" test "$(lines "$dir/from")" -eq 50
check "--from 51: starts at offset 51" test "$(offsets "$dir/from" | head -n 1)" = 51

"$weft" replay $node --from 10 --to 19 --topic acli.task. >"$dir/range"
check "--from 10 --to 19 --topic acli.task.: 10 lines" test "$(lines "$dir/range")" -eq 10

"$weft" replay $node --since 1h >"$dir/since"
check "--since 1h: 100 lines" test "$(lines "$dir/since")" -eq 100
"$weft" replay $node --since 2100-01-01T00:00:00Z >"$dir/future"
check "--since in the future: exit 0" test $? -eq 0
check "--since in the future: no line" test "$(lines "$dir/future")" -eq 0
"$weft" replay $node --until 2000-01-01T00:00:00+01:00 >"$dir/past"
check "--until in the past: no line" test "$(lines "$dir/past")" -eq 0

"$weft" replay $node --from 98 --json-offsets >/dev/null 2>"$dir/resume"
check "--json-offsets gives where to continue" \
    grep -q '^{"events":3,"next_offset":101}$' "$dir/resume"

# 5. weft get.
line7=$(sed -n 7p "$dir/all")
id7=$(echo "$line7" | sed -n 's/.*"id":"\([0-9a-f-]*\)".*/\1/p')
"$weft" get "$id7" $node >"$dir/get7"
check "get <id of line 7> exits 0" test $? -eq 0
check "get prints the line replay printed" test "$(cat "$dir/get7")" = "$line7"
"$weft" replay $node --from-id "$id7" --limit 1 >"$dir/fromid"
check "--from-id starts at that event" test "$(cat "$dir/fromid")" = "$line7"
"$weft" get 00000000-0000-7000-8000-000000000000 $node >"$dir/get0" 2>"$dir/get0.err"
check "get of an unknown id exits 1" test $? -eq 1
check "get of an unknown id says not found" grep -q 'not found' "$dir/get0.err"
"$weft" get not-an-id $node >/dev/null 2>&1
check "get of a malformed id exits 2" test $? -eq 2

# 6. --follow: events archived after the start arrive; SIGINT ends it with status 0.
"$weft" replay $node --follow --from 101 >"$dir/follow" 2>"$dir/follow.err" &
follow=$!; pids="$pids $follow"
"$weft" pub acli.audit.log '{"a":"{{seq}}"}' --count 10 $pubnode --name pub-c --linger 1 --quiet
i=0
while [ "$(lines "$dir/follow")" -lt 10 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
check "--follow receives the 10 new events" test "$(lines "$dir/follow")" -eq 10
check "--follow: offsets 101..110" \
    test "$(offsets "$dir/follow" | tr '\n' ' ')" = "101 102 103 104 105 106 107 108 109 110 "
kill -INT "$follow"
i=0
while kill -0 "$follow" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
wait "$follow"
check "--follow exits 0 on SIGINT" test $? -eq 0

# 7. Errors.
# (its SUB socket on an ipc path no node ever connected to: no heartbeat can reach it)
"$weft" replay --seed none --gossip-bind none --bind "ipc://$dir/alone.sub" --wait 0.5 \
    >/dev/null 2>"$dir/none.err"
check "no archiver: exit 1" test $? -eq 1
msg='no archiver found on the fabric within 0.5 s; start weft-archiver or pass --archiver ENDPOINT'
check "no archiver: says so" grep -qF "$msg" "$dir/none.err"
"$weft" archive info --seed "$seed" --gossip-bind none --bind "ipc://$dir/lookup.sub" \
    --archiver-name no-such-archiver --wait 0.5 >/dev/null 2>"$dir/noname.err"
check "no archiver of that name: exit 1" test $? -eq 1
check "no archiver of that name: says so" \
    grep -q "no archiver named 'no-such-archiver' found" "$dir/noname.err"
"$weft" replay --from 1 --since 1h $node >/dev/null 2>&1
check "two starts: exit 2" test $? -eq 2
"$weft" replay --since yesterday $node >/dev/null 2>&1
check "a bad TIME: exit 2" test $? -eq 2
"$weft" archive nosuch >/dev/null 2>&1
check "an unknown archive subcommand: exit 2" test $? -eq 2
for c in replay get archive "archive info"; do
    "$weft" $c --help >/dev/null 2>&1
    check "weft $c --help exits 0" test $? -eq 0
done

# 8. The archiver stops cleanly.
kill -INT "$arch"
wait "$arch"
check "weft-archiver exits 0 on SIGINT" test $? -eq 0

exit $fail
