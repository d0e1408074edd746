#!/bin/sh
# test_top.sh - weft-top --batch and `weft stat` against real load: two publishers at known
# rates and a subscriber join an ephemeral gossip seed; weft-top must list every node with its
# role and each publisher's out/s within 30 % of its configured rate; after `kill -9` of one
# publisher, weft-top must show it down within 3 heartbeats (plus a margin); `weft stat --json`
# must parse and show the same live nodes. No fixed ports; waits poll for conditions.
#
#   test_top.sh PATH/TO/weft PATH/TO/weft-top
set -u
weft=$1
top=$2
dir=$(mktemp -d /tmp/weft-top.XXXXXX)
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

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Rows of the Nodes table of the last snapshot in a batch output file (while weft-top is still
# writing, that snapshot may be incomplete: callers poll until the row they want is there):
# "NAME ROLE STATE OUT/S IN/S", columns found by their header.
nodes_of() { # nodes_of FILE
    awk '
        /^weft-top .* snapshot / { delete rows; sect = ""; next }
        /^== / { sect = $2; hdr = 0; next }
        sect == "Nodes" && !hdr && $1 == "NAME" { for (i = 1; i <= NF; i++) col[$i] = i; hdr = 1; next }
        sect == "Nodes" && hdr && NF > 0 { rows[$1] = $1 " " $col["ROLE"] " " $col["STATE"] " " $col["OUT/S"] " " $col["IN/S"] }
        END { for (k in rows) print rows[k] }
    ' "$1"
}

# Field of one node in a nodes_of listing: 2 role, 3 state, 4 out/s, 5 in/s.
field() { # field LISTING NAME N
    printf '%s\n' "$1" | awk -v n="$2" -v f="$3" '$1 == n { print $f }'
}

within() { # within VALUE EXPECTED PERCENT
    awk -v v="$1" -v e="$2" -v p="$3" 'BEGIN { exit !(v != "-" && v + 0 >= e * (1 - p / 100) && v + 0 <= e * (1 + p / 100)) }'
}

# 1. A subscriber of the load holds an ephemeral gossip seed; publishers join it.
"$weft" sub load. --name top-sub --seed none --gossip-bind 'tcp://127.0.0.1:*' --print-endpoint \
    --ready-file "$dir/ready" >/dev/null 2>"$dir/sub.err" &
pids="$pids $!"
check "the seed-holding subscriber becomes ready" wait_file "$dir/ready" 10
seed=$(sed -n 's/.*gossip=\([^ ]*\).*/\1/p' "$dir/sub.err" | head -n 1)
check "the subscriber reports its gossip endpoint" test -n "$seed"
"$weft" pub load.fast '{"n":"{{seq}}"}' --name top-pub200 --rate 200 --count 100000000 \
    --seed "$seed" --quiet >/dev/null 2>"$dir/pub200.err" &
pub200=$!; pids="$pids $pub200"
"$weft" pub load.slow '{"n":"{{seq}}"}' --name top-pub50 --rate 50 --count 100000000 \
    --seed "$seed" --quiet >/dev/null 2>"$dir/pub50.err" &
pub50=$!; pids="$pids $pub50"

# 2. weft-top --batch -n 4 -d 1: every node, its role, out/s within 30 % (a run that starts
#    before the publishers have found their peers may see no rate yet: up to 3 runs).
ok=0
for attempt in 1 2 3; do
    "$top" --batch -n 4 -d 1 --seed "$seed" >"$dir/batch.out" 2>"$dir/batch.err"
    rc=$?
    rows=$(nodes_of "$dir/batch.out")
    r200=$(field "$rows" top-pub200 4)
    r50=$(field "$rows" top-pub50 4)
    rin=$(field "$rows" top-sub 5)
    if [ $rc -eq 0 ] && within "$r200" 200 30 && within "$r50" 50 30 && within "$rin" 250 30; then
        ok=1
        break
    fi
done
echo "     weft-top measured: top-pub200 out/s $r200 (configured 200), top-pub50 out/s $r50" \
     "(configured 50), top-sub in/s $rin (expected 250), after $attempt run(s)"
check "weft-top --batch exits 0" test "$rc" -eq 0
check "out/s of both publishers and in/s of the subscriber are within 30 %" test $ok -eq 1
check "the publishers are listed with role cli and up" \
    test "$(field "$rows" top-pub200 2) $(field "$rows" top-pub200 3) $(field "$rows" top-pub50 2)" = "cli up cli"
check "the subscriber is listed with role cli" test "$(field "$rows" top-sub 2)" = "cli"
check "weft-top lists itself with role monitor" \
    sh -c "printf '%s\n' \"$rows\" | grep -q '^weft-top-[0-9]* monitor up'"
check "every view is printed" \
    sh -c "grep -q '^== Nodes' '$dir/batch.out' && grep -q '^== Topics' '$dir/batch.out' &&
           grep -q '^== Lag' '$dir/batch.out' && grep -q '^== Archiver' '$dir/batch.out' &&
           grep -q '^== DLQ' '$dir/batch.out'"
check "the topics view shows load.fast with one publisher and one subscriber" \
    sh -c "grep -Eq '^load\.fast +1 +1 ' '$dir/batch.out'"
check "the lag view pairs the subscriber with each publisher" \
    sh -c "grep -Eq '^top-sub +top-pub200 ' '$dir/batch.out' && grep -Eq '^top-sub +top-pub50 ' '$dir/batch.out'"
"$top" --batch -n 1 -d 0.2 --view topics --seed none --gossip-bind none >"$dir/one.out" 2>&1
check "--view prints only that view" \
    sh -c "grep -q '^== Topics' '$dir/one.out' && ! grep -q '^== Nodes' '$dir/one.out'"

# 3. kill -9 a publisher: a running weft-top shows it down within 3 heartbeats + a margin.
"$top" --batch -d 0.25 -n 400 --view nodes --seed "$seed" >"$dir/live.out" 2>"$dir/live.err" &
live=$!; pids="$pids $live"
i=0
while [ "$(field "$(nodes_of "$dir/live.out")" top-pub200 3)" != "up" ] && [ $i -lt 100 ]; do
    sleep 0.1; i=$((i + 1))
done
check "the watching weft-top sees top-pub200 up" \
    test "$(field "$(nodes_of "$dir/live.out")" top-pub200 3)" = "up"
kill -9 "$pub200"
killed=$(now_ms)
seen=""
while [ -z "$seen" ] && [ $(($(now_ms) - killed)) -lt 10000 ]; do
    if [ "$(field "$(nodes_of "$dir/live.out")" top-pub200 3)" = "down" ]; then seen=$(now_ms); fi
    sleep 0.05
done
if [ -n "$seen" ]; then
    echo "     top-pub200 shown down $((seen - killed)) ms after kill -9 (3 heartbeats = 3000 ms)"
fi
check "the killed publisher is shown down within 3 heartbeats + 2 s" \
    test -n "$seen" -a $((${seen:-0} - killed)) -le 5000
check "the other publisher stays up" \
    test "$(field "$(nodes_of "$dir/live.out")" top-pub50 3)" = "up"

# 4. weft stat --json parses and shows the same live nodes.
"$weft" stat --json --seed "$seed" >"$dir/stat.json" 2>"$dir/stat.err"
check "weft stat --json exits 0" test $? -eq 0
if command -v python3 >/dev/null 2>&1; then
    check "weft stat --json is one JSON document with the live nodes, roles and rates" \
        python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for key in ("totals", "nodes", "topics", "lag", "archivers", "dlqs"):
    assert key in d, key
nodes = {n["name"]: n for n in d["nodes"]}
assert nodes["top-sub"]["role"] == "cli" and nodes["top-sub"]["up"], nodes.keys()
assert nodes["top-pub50"]["role"] == "cli" and nodes["top-pub50"]["up"]
rate = nodes["top-pub50"]["out_per_s"]
assert rate is not None and 35 <= rate <= 65, rate
assert any(n["role"] == "monitor" for n in d["nodes"])
assert any(t["topic"] == "load.slow" for t in d["topics"])
assert isinstance(nodes["top-sub"]["inst"], str)
print("     weft stat: top-pub50 out_per_s", rate, "- nodes:", " ".join(sorted(nodes)))
' "$dir/stat.json"
else
    check "weft stat --json shows the live nodes (no python3: grep)" \
        sh -c "grep -q '\"name\": \"top-sub\"' '$dir/stat.json' &&
               grep -q '\"name\": \"top-pub50\"' '$dir/stat.json' &&
               grep -q '\"role\": \"monitor\"' '$dir/stat.json'"
fi
"$weft" stat --seed none --gossip-bind none --wait 0.3 --view nodes >"$dir/stat.txt" 2>&1
check "weft stat text output has the nodes table" grep -q '^NAME  *ROLE' "$dir/stat.txt"

# 5. Usage.
"$top" --help >/dev/null 2>&1
check "weft-top --help exits 0" test $? -eq 0
"$top" --batch --view nosuch >/dev/null 2>&1
check "an unknown view is a usage error (2)" test $? -eq 2
"$top" -d 0 --batch >/dev/null 2>&1
check "a refresh under 0.1 s is a usage error (2)" test $? -eq 2
"$weft" stat --help >/dev/null 2>&1
check "weft stat --help exits 0" test $? -eq 0

kill "$live" 2>/dev/null
wait "$live" 2>/dev/null
if [ $fail -ne 0 ]; then
    for f in sub pub200 pub50 batch; do
        [ -s "$dir/$f.err" ] && { echo "--- $f.err"; tail -n 20 "$dir/$f.err"; }
    done
fi
exit $fail
