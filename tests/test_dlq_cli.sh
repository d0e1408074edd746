#!/bin/sh
# test_dlq_cli.sh - `weft dlq` and `weft sub --fail` against a real weft-dlq: a subscriber whose
# handler always fails dead-letters the events it gets; the letters are listed with their
# subscriber and error, parked after max attempts with the error text kept, shown with their
# event, retried (attempts grow), resolved once the subscriber is restarted without failures,
# and purged. Wrong use gives the documented exit codes. Ports are ephemeral; only the
# processes started here are killed.
#
# Other fabrics may run on this machine, so the nodes started here join a gossip seed of
# their own, bind their SUB sockets on ipc:// paths in the test's directory, and the DLQ has
# a name of its own that the lookups ask for (--dlq-name).
#
#   test_dlq_cli.sh PATH/TO/weft PATH/TO/weft-dlq
set -u
weft=$1
dlqbin=$2
dir=$(mktemp -d /tmp/weft-dlq-cli.XXXXXX)
pids=""
fail=0
cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$dir"
}
trap cleanup EXIT
# Heartbeats every 200 ms: the DLQ and the subscriber are seen up (and down) sooner.
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

alive() { # alive PID: the process runs (not exited, not a zombie)
    st=$(ps -o stat= -p "$1" 2>/dev/null)
    [ -n "$st" ] && [ "${st#Z}" = "$st" ]
}

stop() { # stop PID DESCRIPTION: SIGINT, then checks that it exits with 0 within 10 s
    kill -INT "$1" 2>/dev/null
    i=0
    while alive "$1" && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    if alive "$1"; then
        # (a node's shutdown can hang in the library when SIGINT ends its gossip actor first)
        echo "note: $2 did not exit within 10 s of SIGINT: killed"
        kill -9 "$1" 2>/dev/null
        wait "$1" 2>/dev/null
        return 0
    fi
    wait "$1"
    check "$2 exits 0 on SIGINT" test $? -eq 0
}

dname="dlq-cli-test-$$"
subnode="dlq-cli-sub-$$"

# 1. The DLQ holds a gossip seed on a free port (or on an ephemeral one it reports).
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
# (set -f: the * above is for weft-dlq, not for the shell)
set -f
"$dlqbin" --data "$dir/dlq" --name "$dname" $seedopts --bind "ipc://$dir/dlq.sub" \
    --backoff 100 --backoff-max 200 --max-attempts 3 --timeout 1000 \
    --ready-file "$dir/ready" >"$dir/dlq.out" 2>"$dir/dlq.err" &
set +f
dlq=$!; pids="$pids $dlq"
check "weft-dlq starts and serves" wait_file "$dir/ready" 10
if [ ! -s "$dir/ready" ]; then
    cat "$dir/dlq.err"
    exit 1
fi
if [ -z "$port" ]; then
    seed=$(sed -n 's/.*gossip seed \(tcp:[^ ,]*\).*/\1/p' "$dir/dlq.err" | head -n 1)
fi
check "the gossip seed is known ($seed)" test -n "$seed"
svc=$(cat "$dir/ready")
# Lookups through gossip (--wait: an upper bound; a lookup usually takes a few hundred ms),
# and straight at the service endpoint for the polls.
node="--seed $seed --gossip-bind none --bind ipc://$dir/lookup.sub --dlq-name $dname --wait 10"
at="--dlq $svc"

counts() { # counts: "pending retrying parked resolved" from the DLQ's INFO
    "$weft" dlq stats --json $at 2>/dev/null |
        sed -n 's/.*"counts":{"pending":\([0-9]*\),"retrying":\([0-9]*\),"parked":\([0-9]*\),"resolved":\([0-9]*\)}.*/\1 \2 \3 \4/p'
}

wait_counts() { # wait_counts SECONDS "P R K S": polls INFO until the counts are these
    end=$(($(date +%s) + $1))
    while [ "$(counts)" != "$2" ]; do
        [ "$(date +%s)" -ge $end ] && return 1
        sleep 0.2
    done
}

open_letters() { # open_letters: pending + retrying + parked
    set -- $(counts) 0 0 0
    echo $(($1 + $2 + $3))
}

start_sub() { # start_sub FAIL OUT: the subscriber node, always the same name
    rm -f "$dir/sub.ready"
    "$weft" sub job. --fail "$1" --sub-name worker --retries 1 --name "$subnode" \
        --seed "$seed" --gossip-bind none --bind "ipc://$dir/$2.sub" \
        --ready-file "$dir/sub.ready" >"$dir/$2" 2>"$dir/$2.err" &
    sub=$!; pids="$pids $sub"
    wait_file "$dir/sub.ready" 10
}

# 2. A subscriber that always fails, with one handler call per event: every event it gets
#    is dead-lettered at once.
check "the failing subscriber is ready" start_sub 1 sub1.out
"$weft" pub job.run '{"n":"{{seq}}"}' --count 5 --seed "$seed" --gossip-bind none \
    --bind "ipc://$dir/pub.sub" --name "dlq-cli-pub-$$" --linger 1 --quiet
check "weft pub exits 0" test $? -eq 0
"$weft" dlq stats --json $node >"$dir/stats.json" 2>"$dir/stats.err"
check "dlq stats --json finds the DLQ through gossip and exits 0" test $? -eq 0
check "dlq stats --json names the DLQ" grep -q "\"name\":\"$dname\"" "$dir/stats.json"
end=$(($(date +%s) + 15))
while [ "$(open_letters)" -lt 5 ] && [ "$(date +%s)" -lt $end ]; do sleep 0.2; done
check "5 letters appear in the DLQ" test "$(open_letters)" -eq 5
check "the failed events were printed with \"failed\":true" \
    test "$(grep -c '"topic":"job.run".*"failed":true}$' "$dir/sub1.out")" -ge 5

# 3. list --json: the letters, their subscriber and code.
"$weft" dlq list --json $node >"$dir/list.json"
check "dlq list --json exits 0" test $? -eq 0
check "dlq list --json: 5 letters" test "$(lines "$dir/list.json")" -eq 5
check "dlq list --json: code demo.fail" test "$(grep -c '"code":"demo.fail"' "$dir/list.json")" -eq 5
check "dlq list --json: subscriber $subnode/worker" \
    test "$(grep -c "\"subscriber\":\"$subnode/worker\"" "$dir/list.json")" -eq 5
check "dlq list --json: topic and node" \
    test "$(grep -c "\"topic\":\"job.run\",\"subscriber\":\"$subnode/worker\",\"node\":\"$subnode\"" "$dir/list.json")" -eq 5
"$weft" dlq list --json --limit 2 $at >"$dir/list2.json"
check "dlq list --limit 2: 2 letters" test "$(lines "$dir/list2.json")" -eq 2
"$weft" dlq list --json --topic nosuch. $at >"$dir/none.json"
check "dlq list --topic with no match: nothing" test "$(lines "$dir/none.json")" -eq 0

# 4. Three redeliveries fail too (max attempts 3): the letters are parked, error text kept.
check "the 5 letters are parked" wait_counts 15 "0 0 5 0"
"$weft" dlq list --json --state parked $at >"$dir/parked.json"
check "dlq list --state parked: 5 letters" test "$(lines "$dir/parked.json")" -eq 5
check "parked letters keep the error text" \
    test "$(grep -c '"message":"simulated failure (weft sub --fail 1), attempt 4 of job.run"' "$dir/parked.json")" -eq 5
check "parked letters: 4 attempts (1 on the node, 3 redelivered)" \
    test "$(grep -c '"attempts":4,"redeliveries":3,' "$dir/parked.json")" -eq 5
"$weft" dlq list --state parked $at >"$dir/parked.txt"
check "dlq list (text): a header and 5 rows" test "$(lines "$dir/parked.txt")" -eq 6
check "dlq list (text): the columns" \
    grep -q '^ID  *STATE  *SUBSCRIBER  *TOPIC  *CODE  *ATTEMPTS  *AGE  *NEXT RETRY$' "$dir/parked.txt"
check "dlq list (text): a parked row" \
    grep -q "^[0-9a-f-]\{36\}  parked  *$subnode/worker  *job.run  *demo.fail  *4  *[0-9]" "$dir/parked.txt"
id=$(sed -n '1s/^{"id":"\([0-9a-f-]*\)".*/\1/p' "$dir/parked.json")
"$weft" dlq show "$id" $at >"$dir/show.json"
check "dlq show ID exits 0" test $? -eq 0
check "dlq show: the letter" grep -q "^{\"id\":\"$id\",\"event_id\":\"[0-9a-f-]*\",\"topic\":\"job.run\"" "$dir/show.json"
check "dlq show: its event as weft sub prints it" \
    grep -q '"event":{"topic":"job.run","id":"[0-9a-f-]*","src":"dlq-cli-pub-[0-9]*",.*"payload":{"n":[1-5]}}}$' "$dir/show.json"
"$weft" dlq stats $at >"$dir/stats.txt"
check "dlq stats (text): the counts" \
    grep -q '^letters  *0 pending, 0 retrying, 5 parked, 0 resolved$' "$dir/stats.txt"
check "dlq stats (text): the top code" grep -q '^  *5  demo.fail$' "$dir/stats.txt"

# 5. retry --all: redelivered again (the subscriber still fails): attempts grow, parked again.
"$weft" dlq retry --all $at >"$dir/retry1"
check "dlq retry --all exits 0" test $? -eq 0
check "dlq retry --all: 5 letters" grep -q '^retried 5 letters$' "$dir/retry1"
end=$(($(date +%s) + 15))
while [ "$("$weft" dlq list --json --state parked $at | grep -c '"attempts":7,')" -lt 5 ] &&
    [ "$(date +%s)" -lt $end ]; do sleep 0.2; done
"$weft" dlq list --json $at >"$dir/again.json"
check "after retry --all: 3 more redeliveries each (attempts 7), parked again" \
    test "$(grep -c '"attempts":7,"redeliveries":6,.*"state":"parked"' "$dir/again.json")" -eq 5

# 6. The subscriber is restarted without failures (same node name): retry --state parked
#    resolves every letter.
stop "$sub" "the failing subscriber"
check "the healthy subscriber is ready" start_sub 0 sub2.out
"$weft" dlq retry --state parked $node >"$dir/retry2"
check "dlq retry --state parked: 5 letters" grep -q '^retried 5 letters$' "$dir/retry2"
# (a redelivery that went to the old subscriber just before the DLQ saw it down fails, and
#  its letter may be parked again: those are retried once more)
end=$(($(date +%s) + 20))
while [ "$(counts)" != "0 0 0 5" ] && [ "$(date +%s)" -lt $end ]; do
    set -- $(counts) 0 0 0
    [ "$3" -gt 0 ] && "$weft" dlq retry --state parked $at >/dev/null
    sleep 0.2
done
check "the 5 letters are resolved" test "$(counts)" = "0 0 0 5"
check "the healthy subscriber handled the 5 events" \
    test "$(grep -c '"topic":"job.run".*"retry":[0-9]*,.*"payload":{"n":[1-5]}}$' "$dir/sub2.out")" -ge 5
check "without --fail no line has \"failed\"" test "$(grep -c failed "$dir/sub2.out")" -eq 0

# 7. purge --state resolved removes them.
"$weft" dlq purge --state resolved $at >"$dir/purge"
check "dlq purge --state resolved exits 0" test $? -eq 0
check "dlq purge: 5 letters" grep -q '^purged 5 letters$' "$dir/purge"
"$weft" dlq list --json $at >"$dir/empty.json"
check "dlq list --json after the purge: empty" test "$(lines "$dir/empty.json")" -eq 0
"$weft" dlq list $at >"$dir/empty.txt"
check "dlq list (text) after the purge: says so" grep -q '^no letters$' "$dir/empty.txt"
check "dlq stats after the purge: no letter" wait_counts 5 "0 0 0 0"

# 8. Errors.
"$weft" dlq show 00000000-0000-7000-8000-000000000000 $at >/dev/null 2>"$dir/show0.err"
check "dlq show of an unknown id exits 1" test $? -eq 1
check "dlq show of an unknown id says not found" grep -q 'not found in the DLQ' "$dir/show0.err"
"$weft" dlq show not-an-id $at >/dev/null 2>&1
check "dlq show of a malformed id exits 2" test $? -eq 2
"$weft" dlq retry $at >/dev/null 2>"$dir/retry0.err"
check "dlq retry without an ID, a filter or --all exits 2" test $? -eq 2
check "dlq retry without a filter says what to give" grep -q -- '--all for every letter' "$dir/retry0.err"
"$weft" dlq purge $at >/dev/null 2>&1
check "dlq purge without an ID, a filter or --all exits 2" test $? -eq 2
"$weft" dlq retry "$id" --all $at >/dev/null 2>&1
check "dlq retry with an ID and --all exits 2" test $? -eq 2
"$weft" dlq list --state sleeping $at >/dev/null 2>&1
check "dlq list --state with an unknown state exits 2" test $? -eq 2
"$weft" dlq list --older-than soon $at >/dev/null 2>&1
check "dlq list --older-than with a bad duration exits 2" test $? -eq 2
"$weft" dlq list --older-than 1d $at >"$dir/old.json"
check "dlq list --older-than 1d exits 0" test $? -eq 0
"$weft" dlq purge "$id" $at >/dev/null 2>"$dir/purge0.err"
check "dlq purge of a purged letter exits 1" test $? -eq 1
"$weft" dlq nosuch >/dev/null 2>&1
check "an unknown dlq subcommand exits 2" test $? -eq 2
# (its SUB socket on an ipc path no node ever connected to: no heartbeat can reach it)
"$weft" dlq stats --seed none --gossip-bind none --bind "ipc://$dir/alone.sub" --wait 0.5 \
    >/dev/null 2>"$dir/nodlq.err"
check "no DLQ: exit 1" test $? -eq 1
msg='no DLQ found on the fabric within 0.5 s; start weft-dlq or pass --dlq ENDPOINT'
check "no DLQ: says so" grep -qF "$msg" "$dir/nodlq.err"
for c in dlq "dlq list" "dlq show" "dlq retry" "dlq purge" "dlq stats"; do
    "$weft" $c --help >/dev/null 2>&1
    check "weft $c --help exits 0" test $? -eq 0
done
"$weft" sub job. --fail 2 --seed none --gossip-bind none >/dev/null 2>&1
check "weft sub --fail 2 exits 2" test $? -eq 2
"$weft" sub job. task. --sub-name w --seed none --gossip-bind none >/dev/null 2>&1
check "weft sub --sub-name with two prefixes exits 2" test $? -eq 2

# 9. Everything stops cleanly.
stop "$sub" "the healthy subscriber"
stop "$dlq" "weft-dlq"

exit $fail
