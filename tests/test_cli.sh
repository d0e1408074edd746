#!/bin/sh
# test_cli.sh - the `weft` command line across processes: a publisher started after its
# subscriber reaches it through gossip and through a static peer; payloads, envelope fields and
# JSON output arrive intact; bad input gives the documented exit codes. Ports are ephemeral.
#
#   test_cli.sh PATH/TO/weft
set -u
weft=$1
dir=$(mktemp -d /tmp/weft-cli.XXXXXX)
pids=""
fail=0
cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$dir"
}
trap cleanup EXIT

check() { # check DESCRIPTION COMMAND...
    desc=$1; shift
    if "$@"; then echo "ok  : $desc"; else echo "FAIL: $desc"; fail=1; fi
}

wait_file() { # wait_file PATH SECONDS
    i=0
    while [ ! -s "$1" ] && [ $i -lt $(($2 * 20)) ]; do sleep 0.05; i=$((i + 1)); done
    [ -s "$1" ]
}

# 1. Gossip: the subscriber holds an ephemeral seed; the publisher, started after it, finds it.
"$weft" sub task. --name cli-sub1 --seed none --gossip-bind 'tcp://127.0.0.1:*' --print-endpoint \
    --count 5 --timeout 20 --ready-file "$dir/ready1" >"$dir/out1" 2>"$dir/err1" &
sub1=$!; pids="$pids $sub1"
check "subscriber with a gossip seed becomes ready" wait_file "$dir/ready1" 10
seed=$(sed -n 's/.*gossip=\([^ ]*\).*/\1/p' "$dir/err1" | head -n 1)
check "the subscriber reports its gossip endpoint" test -n "$seed"
"$weft" pub task.created '{"n":"{{seq}}","who":"cli"}' --count 5 --seed "$seed" --name cli-pub1 \
    --corr c-1 --header k=v --linger 0.5 --quiet
check "weft pub exits 0" test $? -eq 0
wait "$sub1"
check "weft sub exits 0 after --count events" test $? -eq 0
check "5 events arrived" test "$(grep -c '"topic":"task.created"' "$dir/out1")" -eq 5
for n in 1 2 3 4 5; do
    check "payload $n arrived once, as JSON" test "$(grep -c "\"n\":$n[,}]" "$dir/out1")" -eq 1
done
check "envelope fields are printed" grep -q '"src":"cli-pub1".*"seq":1,.*"corr":"c-1".*"h":{"k":"v"}' "$dir/out1"

# 2. Static peer: no gossip at all.
"$weft" sub user. --name cli-sub2 --seed none --gossip-bind none --count 3 --timeout 20 \
    --ready-file "$dir/ready2" >"$dir/out2" 2>"$dir/err2" &
sub2=$!; pids="$pids $sub2"
check "static subscriber becomes ready" wait_file "$dir/ready2" 10
"$weft" pub user.deleted '{"u":"{{seq}}"}' --count 3 --seed none --gossip-bind none \
    --connect "$(cat "$dir/ready2")" --linger 0.5 --quiet
wait "$sub2"
check "static peer: 3 events arrived" test "$(grep -c '"topic":"user.deleted"' "$dir/out2")" -eq 3

# 2b. Fabrics: a publisher of another fabric that finds the same seed reaches nobody.
"$weft" sub fab. --name cli-sub-red --fabric red --seed none --gossip-bind 'tcp://127.0.0.1:*' \
    --print-endpoint --count 3 --timeout 20 --fields src,seq --ready-file "$dir/ready3" \
    >"$dir/out3" 2>"$dir/err3" &
sub3=$!; pids="$pids $sub3"
check "the red subscriber becomes ready" wait_file "$dir/ready3" 10
seed3=$(sed -n 's/.*gossip=\([^ ]*\).*/\1/p' "$dir/err3" | head -n 1)
"$weft" pub fab.x '{}' --count 3 --fabric blue --seed "$seed3" --gossip-bind none \
    --name cli-pub-blue --wait 1 --linger 0.5 --quiet
"$weft" pub fab.x '{}' --count 3 --fabric red --seed "$seed3" --gossip-bind none \
    --name cli-pub-red --linger 0.5 --quiet
wait "$sub3"
check "the red subscriber gets its 3 events (exit 0)" test $? -eq 0
check "... all from the red publisher" test "$(grep -c '"src":"cli-pub-red"' "$dir/out3")" -eq 3
check "... none from the blue one" test "$(grep -c 'cli-pub-blue' "$dir/out3")" -eq 0
"$weft" sub x. --fabric 'two words' --seed none --gossip-bind none --timeout 0.1 \
    >/dev/null 2>"$dir/err4"
check "an invalid fabric name is refused" test $? -ne 0
check "... with a message naming fabric/name" grep -q "fabric/name" "$dir/err4"

# 2c. A stray request on the gossip seed's port (another test's node probing a dead peer whose
#     control port the seed now has) stops czmq's zgossip service: the seed's holder restarts
#     it on the same port, and a publisher started afterwards still finds the subscriber.
"$weft" sub stray. --name cli-sub-stray --seed none --gossip-bind 'tcp://127.0.0.1:*' \
    --print-endpoint --count 3 --timeout 10 --ready-file "$dir/ready5" >"$dir/out5" 2>"$dir/err5" &
sub5=$!; pids="$pids $sub5"
check "the subscriber holding the seed becomes ready" wait_file "$dir/ready5" 10
seed5=$(sed -n 's/.*gossip=\([^ ]*\).*/\1/p' "$dir/err5" | head -n 1)
"$weft" archive info --archiver "$seed5" --timeout 0.5 --seed none --gossip-bind none \
    >/dev/null 2>&1
"$weft" pub stray.x '{}' --count 3 --seed "$seed5" --name cli-pub-stray --linger 0.5 --quiet
wait "$sub5"
check "after a stray request on its seed, the subscriber still gets 3 events (exit 0)" \
    test $? -eq 0
check "... and says it restarted its gossip service" grep -q "gossip service stopped" "$dir/err5"

# 3. Errors and help.
"$weft" pub _weft.hb '{}' --seed none --gossip-bind none --wait 0 --linger 0 >/dev/null 2>&1
check "publishing on the reserved prefix fails with 1" test $? -eq 1
"$weft" pub 'bad topic' '{}' --seed none --gossip-bind none --wait 0 --linger 0 >/dev/null 2>&1
check "a bad topic fails with 1" test $? -eq 1
"$weft" pub t.x '{not json' --seed none --gossip-bind none >/dev/null 2>&1
check "bad JSON fails with 2" test $? -eq 2
"$weft" nosuchcommand >/dev/null 2>&1
check "an unknown command fails with 2" test $? -eq 2
"$weft" sub --timeout 0.2 --seed none --gossip-bind none >/dev/null 2>&1
check "sub without a prefix fails with 2" test $? -eq 2
for c in "" pub sub bench; do
    "$weft" $c --help >/dev/null 2>&1
    check "weft $c --help exits 0" test $? -eq 0
done
"$weft" sub nothing. --seed none --gossip-bind none --count 1 --timeout 0.3 >/dev/null 2>&1
check "sub --count with a timeout and too few events exits 1" test $? -eq 1

exit $fail
