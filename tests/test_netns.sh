#!/bin/sh
# test_netns.sh - a fabric across three hosts, emulated with Linux network namespaces, survives
# the loss of the host of one of its two gossip seeds and loses nothing.
#
# Layout: hosts A, B and C are network namespaces, each joined by a veth link to a bridge in a
# fourth namespace; addresses 10.X.Y.1 (A), .2 (B), .3 (C), with X and Y random. Host A has a
# second link (10.X.Y.11) that carries only its gossip seed, so "the host of that seed" can
# disappear from the network while the publisher on A keeps its own link.
#   A: a seed holder (`weft sub` bound to the seed link, holding seed tcp://10.X.Y.11:PA)
#      and the publisher: `weft pub nt.ev '{"n":"{{seq}}"}' --rate 200 --count 4000`
#   B: weft-archiver, holding the second seed tcp://10.X.Y.2:PB
#   C: a subscriber, `weft sub nt.` (live: `weft sub` has no repair option, so completeness
#      is checked in the archive, which repairs from the publisher's outbox)
# Every node binds its SUB (and so its control) socket on its host's address and lists both
# seeds; PA and PB are random in 20000-40000 and checked free.
#
# Mid-run (once C has seen a quarter of the events) the seed link of A is deleted: the seed's
# address vanishes, nothing answers there any more. Then:
#   - the publisher goes on and ends with status 0;
#   - C receives events published after the removal;
#   - a subscriber started on C after the removal finds the fabric through the remaining
#     seed alone and receives events;
#   - the archive (weft replay via the archiver on B) holds every seq 1..COUNT of the
#     publisher, each exactly once.
# Then hosts A and C are cut off from each other (a blackhole route on each side, and their
# TCP connections ended; both keep reaching B, so gossip notices nothing) until C's subscriber and the publisher have each
# marked the other down, and for 3 s more; then the routes go. The two must find each other
# again - neither hears the other's heartbeats any more and gossip has nothing new to say:
# the control PINGs to a down peer reconnect them - and C must receive events published after
# the partition healed.
#
# Needs root and `ip netns`; otherwise prints "SKIP: ..." and exits 77 (ctest: skipped).
# Every namespace and every process started here is removed in a trap on every exit path;
# waits are polls with deadlines.
#
#   test_netns.sh PATH/TO/weft PATH/TO/weft-archiver
set -u
weft=$1
archiver=$2
COUNT=6000
RATE=200

skip() {
    echo "SKIP: $*"
    exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root to create network namespaces (ip netns)"
command -v ip >/dev/null 2>&1 || skip "the ip command (iproute2) is not installed"

tag=$$
nsA="weft-$tag-a"; nsB="weft-$tag-b"; nsC="weft-$tag-c"; nsBR="weft-$tag-br"
dir=$(mktemp -d /tmp/weft-netns.XXXXXX)
pids=""
made=""
fail=0

cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
    for n in $made; do ip netns del "$n" 2>/dev/null; done
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

if ! ip netns add "$nsBR" 2>"$dir/netns.err"; then
    skip "cannot create a network namespace: $(cat "$dir/netns.err")"
fi
made="$nsBR"

die() {
    echo "FAIL: $*"
    for f in "$dir"/*.err; do
        [ -s "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }
    done
    exit 1
}

check() { # check DESCRIPTION COMMAND...
    desc=$1; shift
    if "$@"; then echo "ok  : $desc"; else echo "FAIL: $desc"; fail=1; fi
}

now_ms() {
    t=$(date +%s%N)
    echo $((t / 1000000))
}

poll() { # poll SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds or time is up
    limit=$(($(now_ms) + $1 * 1000)); shift
    while ! "$@"; do
        [ "$(now_ms)" -ge "$limit" ] && return 1
        sleep 0.1
    done
    return 0
}

rnd() { # rnd N: a random number in 0..N-1
    v=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
    echo $((v % $1))
}

in_ns() { # in_ns NS COMMAND...: in the foreground. (Background processes are started with
           # `ip netns exec ... &` directly: it execs the command, so $! is the node's pid.)
    ns=$1; shift
    ip netns exec "$ns" "$@"
}

# ---- the network ----------------------------------------------------------------------------
X=$((100 + $(rnd 150))); Y=$((1 + $(rnd 250)))
net="10.$X.$Y"
ipA="$net.1"; ipB="$net.2"; ipC="$net.3"; ipS="$net.11"
for n in "$nsA" "$nsB" "$nsC"; do
    ip netns add "$n" || die "ip netns add $n"
    made="$made $n"
done
# Each link of A answers ARP only for its own address: by default Linux answers for every
# local address on every link, and peers could then reach A's publisher through the seed
# link's MAC address, and lose it with that link.
for k in all default; do
    in_ns "$nsA" sh -c "echo 1 >/proc/sys/net/ipv4/conf/$k/arp_ignore &&
                        echo 2 >/proc/sys/net/ipv4/conf/$k/arp_announce" ||
        die "cannot set the ARP behaviour of $nsA"
done
ip -n "$nsBR" link add br0 type bridge || die "cannot create a bridge"
ip -n "$nsBR" link set br0 up
ip -n "$nsBR" link set lo up
link() { # link NS IFNAME ADDRESS/PREFIX SUFFIX: a veth from NS (as IFNAME) to the bridge
    outer="wn$tag$4"
    ip link add "$outer" type veth peer name "wh$tag$4" || die "cannot create veth $outer"
    ip link set "$outer" netns "$nsBR" || die "cannot move $outer"
    ip link set "wh$tag$4" netns "$1" || die "cannot move wh$tag$4"
    ip -n "$1" link set "wh$tag$4" name "$2"
    ip -n "$1" addr add "$3" dev "$2"
    ip -n "$1" link set "$2" up
    ip -n "$nsBR" link set "$outer" master br0
    ip -n "$nsBR" link set "$outer" up
}
# The seed link's address is a /32: A routes everything else through eth0 (with a second
# route to the /24 on eth1, A's own connections could leave through eth1 and vanish with it).
link "$nsA" eth0 "$ipA/24" a
link "$nsA" eth1 "$ipS/32" s
link "$nsB" eth0 "$ipB/24" b
link "$nsC" eth0 "$ipC/24" c
for n in "$nsA" "$nsB" "$nsC"; do ip -n "$n" link set lo up; done
echo "network: bridge in $nsBR; A $ipA (seed link $ipS), B $ipB, C $ipC"

port_free() { # port_free NS PORT
    ! in_ns "$1" ss -Hltn "sport = :$2" 2>/dev/null | grep -q .
}
pA=$((20000 + $(rnd 20001)))
while ! port_free "$nsA" "$pA"; do pA=$((20000 + $(rnd 20001))); done
pB=$((20000 + $(rnd 20001)))
while [ "$pB" -eq "$pA" ] || ! port_free "$nsB" "$pB"; do pB=$((20000 + $(rnd 20001))); done
seedA="tcp://$ipS:$pA"; seedB="tcp://$ipB:$pB"
seeds="$seedA,$seedB"
echo "seeds: $seeds"

# Heartbeats every 200 ms: peers are seen up (and down) sooner.
WEFT_HEARTBEAT_INTERVAL=200
export WEFT_HEARTBEAT_INTERVAL

# ---- the nodes ------------------------------------------------------------------------------
set -f # the * in the bind endpoints is for the nodes, not for the shell
ip netns exec "$nsA" "$weft" sub netns.idle. --name netns-seed-a --seed "$seeds" \
    --gossip-bind "$seedA" --bind "tcp://$ipS:*" --wait 0 --ready-file "$dir/seed.ready" \
    >"$dir/seed.out" 2>"$dir/seed.err" &
pids="$pids $!"
ip netns exec "$nsB" "$archiver" --data "$dir/archive" --name netns-archiver --seed "$seeds" \
    --gossip-bind "$seedB" --bind "tcp://$ipB:*" --svc-bind "tcp://$ipB:*" \
    --ready-file "$dir/archiver.ready" >"$dir/archiver.out" 2>"$dir/archiver.err" &
pids="$pids $!"
set +f
poll 15 test -s "$dir/seed.ready" || die "the seed holder on A did not start"
poll 15 test -s "$dir/archiver.ready" || die "the archiver on B did not start"
svc=$(cat "$dir/archiver.ready")
echo "ok  : seed holder on A and archiver on B are up (archiver service $svc)"

set -f
ip netns exec "$nsC" "$weft" sub nt. --name netns-sub-c --seed "$seeds" --gossip-bind none \
    --bind "tcp://$ipC:*" --wait 10 --fields seq,src,payload --ready-file "$dir/sub.ready" \
    >"$dir/sub.out" 2>"$dir/sub.err" &
pids="$pids $!"
set +f
poll 20 test -s "$dir/sub.ready" || die "the subscriber on C did not become ready"
echo "ok  : subscriber on C is up"

set -f
ip netns exec "$nsA" "$weft" pub nt.ev '{"n":"{{seq}}"}' --rate "$RATE" --count "$COUNT" \
    --name netns-pub --seed "$seeds" --gossip-bind none --bind "tcp://$ipA:*" --wait 10 \
    --linger 5 >"$dir/pub.out" 2>"$dir/pub.err" &
pub=$!; pids="$pids $pub"
set +f

# ---- mid-run: the seed host of A vanishes -----------------------------------------------------
max_n() { # the highest "n" the subscriber on C printed so far
    sed -n 's/.*"payload":{"n":\([0-9]*\)}.*/\1/p' "$dir/sub.out" | sort -n | tail -n 1
}
seen_quarter() {
    m=$(max_n)
    [ -n "$m" ] && [ "$m" -ge $((COUNT / 4)) ]
}
poll 40 seen_quarter || die "the subscriber on C did not receive a quarter of the events"
ip -n "$nsA" link del eth1 || die "cannot delete the seed link of A"
at_removal=$(max_n)
echo "removed the seed link of A ($seedA) when C had seen event $at_removal of $COUNT"
check "the seed address is gone" sh -c "! ip -n '$nsA' addr show | grep -q '$ipS/'"

# A node started after the removal finds the fabric through the remaining seed alone.
set -f
ip netns exec "$nsC" "$weft" sub nt. --name netns-late-c --seed "$seeds" --gossip-bind none \
    --bind "tcp://$ipC:*" --wait 10 --count 5 --timeout 40 --fields seq \
    >"$dir/late.out" 2>"$dir/late.err" &
late=$!; pids="$pids $late"
set +f
late_done() { ! kill -0 "$late" 2>/dev/null; }
poll 45 late_done
wait "$late"
check "a subscriber started on C after the removal receives events (exit 0)" test $? -eq 0
check "... 5 of them" test "$(grep -c '"seq":' "$dir/late.out")" -eq 5

# ---- mid-run: hosts A and C are cut off from each other, then healed ---------------------
ip -n "$nsA" route add blackhole "$ipC/32" || die "cannot cut A off from C"
ip -n "$nsC" route add blackhole "$ipA/32" || die "cannot cut C off from A"
# End the TCP connections between them too, as a long partition eventually does (else ZeroMQ
# would hold them, with what they queued, until the partition heals).
in_ns "$nsA" ss -K dst "$ipC" >/dev/null 2>&1
in_ns "$nsC" ss -K dst "$ipA" >/dev/null 2>&1
pub_saw_c_down() { grep -q "peer netns-sub-c (.*) is down" "$dir/pub.err"; }
c_saw_pub_down() { grep -q "peer netns-pub (.*) is down" "$dir/sub.err"; }
poll 15 pub_saw_c_down || die "the publisher did not mark C's subscriber down"
poll 15 c_saw_pub_down || die "C's subscriber did not mark the publisher down"
# The partition lasts a while longer: longer than what the disconnected sockets linger to
# flush (node/linger, 0.5 s), so that nothing sent before it can still arrive after it.
sleep 3
ip -n "$nsA" route del blackhole "$ipC/32" || die "cannot heal A's side"
ip -n "$nsC" route del blackhole "$ipA/32" || die "cannot heal C's side"
at_heal=$(max_n)
echo "cut A and C apart until both marked the other down, plus 3 s; healed when C had seen event $at_heal"
pub_running() { kill -0 "$pub" 2>/dev/null; }
check "the publisher was still publishing when the partition healed" pub_running
progressed() { m=$(max_n); [ "${m:-0}" -gt $((at_heal + RATE)) ]; }
check "C receives events published after the partition healed" poll 20 progressed
check "a PING answered by a down peer connected them again" \
    grep -q "answers on .*: connecting to it again" "$dir/pub.err" "$dir/sub.err"

# ---- the end ----------------------------------------------------------------------------------
pub_done() { ! kill -0 "$pub" 2>/dev/null; }
poll $((COUNT / RATE + 40)) pub_done || die "the publisher did not end in time"
wait "$pub"
check "the publisher on A exits 0" test $? -eq 0
check "the publisher reports $COUNT events" grep -q "published $COUNT events" "$dir/pub.err"
after=$(max_n)
check "C received events published after the removal ($at_removal -> $after)" \
    test "${after:-0}" -gt "$at_removal"

# The archive: every seq 1..COUNT of the publisher, each once (repairs may take a moment).
archived() {
    in_ns "$nsB" "$weft" replay --archiver "$svc" --source netns-pub --timeout 5 \
        >"$dir/replay.out" 2>"$dir/replay.err" || return 1
    [ "$(grep -c '"src":"netns-pub"' "$dir/replay.out")" -ge "$COUNT" ]
}
poll 30 archived
sed -n 's/.*"src":"netns-pub","inst":[0-9]*,"seq":\([0-9]*\),.*/\1/p' "$dir/replay.out" \
    | sort -n >"$dir/seqs"
seq 1 "$COUNT" >"$dir/expected"
check "the archive holds $COUNT events of the publisher" test "$(wc -l <"$dir/seqs")" -eq "$COUNT"
check "... seqs 1..$COUNT, each exactly once" cmp -s "$dir/expected" "$dir/seqs"
if ! cmp -s "$dir/expected" "$dir/seqs"; then
    sort "$dir/expected" >"$dir/expected.lex"
    sort -u "$dir/seqs" >"$dir/seqs.lex"
    echo "missing: $(comm -23 "$dir/expected.lex" "$dir/seqs.lex" | sort -n | head -n 20 |
        tr '\n' ' ')"
    echo "extra or repeated: $(uniq -d "$dir/seqs" | head -n 20 | tr '\n' ' ')"
fi
in_ns "$nsB" "$weft" archive info --archiver "$svc" --timeout 5 >"$dir/info" 2>&1 &&
    grep -E '^(events|ingest|repair) ' "$dir/info" | tr -s ' ' | tr '\n' ' ' && echo

if [ $fail -ne 0 ]; then
    for f in pub archiver sub late seed; do
        [ -s "$dir/$f.err" ] && { echo "--- $f.err"; tail -n 15 "$dir/$f.err"; }
    done
fi
exit $fail
