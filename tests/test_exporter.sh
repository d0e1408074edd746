#!/bin/bash
# test_exporter.sh - weft-exporter on an ephemeral port with a known load: /metrics parses as
# Prometheus text format 0.0.4 (every sample line matches `name{labels} value`, a # TYPE line
# precedes each family's samples, families are not split), the publisher's
# weft_events_published_total equals the events it sent, the subscriber's latency histogram is
# cumulative and ends with +Inf == _count, label values are escaped; /health/live and
# /health/ready answer 200, an unknown path 404; SIGTERM stops it with status 0. HTTP is spoken
# through bash's /dev/tcp, so no HTTP client is needed.
#
#   test_exporter.sh PATH/TO/weft PATH/TO/weft-exporter
set -u
weft=$1
exporter=$2
dir=$(mktemp -d /tmp/weft-exporter.XXXXXX)
pids=""
fail=0
cleanup() {
    for p in $pids; do { kill -9 "$p" && wait "$p"; } 2>/dev/null; done
    rm -rf "$dir"
}
trap cleanup EXIT

check() { # check DESCRIPTION COMMAND...
    desc=$1; shift
    if "$@"; then echo "ok  : $desc"; else echo "FAIL: $desc"; fail=1; fi
}

wait_file() { # wait_file PATH SECONDS
    local i=0
    while [ ! -s "$1" ] && [ $i -lt $(($2 * 20)) ]; do sleep 0.05; i=$((i + 1)); done
    [ -s "$1" ]
}

# http_get PATH OUT: GET http://127.0.0.1:$port/PATH; the body goes to OUT, the status code
# to stdout ("000" when the connection fails).
http_get() {
    if ! exec 3<>"/dev/tcp/127.0.0.1/$port"; then
        echo 000
        return
    fi
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&3
    cat <&3 >"$2.raw"
    exec 3<&-
    sed '1,/^\r$/d' "$2.raw" >"$2"
    head -n 1 "$2.raw" | awk '{ print $2 }'
}

N=500
sub_name='exp"sub\x' # a name that needs escaping in a label value
sub_label='exp\"sub\\x'

# 1. A subscriber of the load holds an ephemeral gossip seed (and gives latency figures).
"$weft" sub load. --name "$sub_name" --seed none --gossip-bind 'tcp://127.0.0.1:*' \
    --print-endpoint --ready-file "$dir/ready" >/dev/null 2>"$dir/sub.err" &
pids="$pids $!"
check "the seed-holding subscriber becomes ready" wait_file "$dir/ready" 10
seed=$(sed -n 's/.*gossip=\([^ ]*\).*/\1/p' "$dir/sub.err" | head -n 1)

# 2. The exporter on an ephemeral port.
"$exporter" --listen 127.0.0.1:0 --port-file "$dir/port" --seed "$seed" --name exp-exporter \
    2>"$dir/exporter.err" &
exp=$!; pids="$pids $exp"
check "the exporter writes its port file" wait_file "$dir/port" 10
port=$(cat "$dir/port")
check "the exporter prints the port it serves on" grep -q "127.0.0.1:$port/metrics" "$dir/exporter.err"
check "/health/live answers 200" test "$(http_get /health/live "$dir/live")" = 200
ready=""
for i in $(seq 1 100); do
    ready=$(http_get /health/ready "$dir/ready.body")
    [ "$ready" = 200 ] && break
    sleep 0.1
done
check "/health/ready answers 200 once a heartbeat arrived" test "$ready" = 200
check "/health answers like /health/ready" test "$(http_get /health "$dir/health")" = 200
check "an unknown path answers 404" test "$(http_get /nope "$dir/nope")" = 404

# 3. A known load: N events, then the publisher lingers so its last heartbeats carry them all.
"$weft" pub load.x '{"n":"{{seq}}"}' --name exp-pub --count $N --rate 1000 --seed "$seed" \
    --linger 4 --quiet >/dev/null 2>&1 &
pids="$pids $!"
published=""
for i in $(seq 1 150); do
    if [ "$(http_get /metrics "$dir/metrics")" = 200 ]; then
        published=$(awk '/^weft_events_published_total\{node="exp-pub",/ { print $2 }' "$dir/metrics")
        [ "$published" = "$N" ] && break
    fi
    sleep 0.1
done
cp "$dir/metrics" "$dir/metrics.first"
check "weft_events_published_total of the publisher equals $N (got ${published:-none})" \
    test "$published" = "$N"
# The subscriber's histogram may lag the publisher's counter by one heartbeat: poll for it.
for i in $(seq 1 40); do
    count=$(L=$sub_label awk 'index($0, "weft_delivery_latency_seconds_count{node=\"" ENVIRON["L"] "\"") == 1 { print $2 }' "$dir/metrics")
    [ "${count:-0}" -ge $N ] && break
    sleep 0.1
    http_get /metrics "$dir/metrics" >/dev/null
done
m="$dir/metrics"

# 4. The text format.
bad=$(grep -v '^#' "$m" | grep -Ev '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? [-+]?([0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|Inf|NaN)$')
check "every sample line is name{labels} value" test -z "$bad"
[ -n "$bad" ] && printf '     bad line: %s\n' "$bad" | head -5
check "comment lines are # HELP or # TYPE" \
    test -z "$(grep '^#' "$m" | grep -Ev '^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped))$')"
check "a # TYPE line precedes the samples of each family, and families are not split" \
    awk '
        /^# TYPE / { if ($3 in type) { print "repeated TYPE " $3; bad = 1 } type[$3] = $4; cur = $3; next }
        /^#/ { next }
        {
            name = $0; sub(/[{ ].*/, "", name); base = name
            if (!(base in type)) { b = base; sub(/_(bucket|sum|count)$/, "", b); if (type[b] == "histogram") base = b }
            if (!(base in type)) { print "no TYPE before " name; bad = 1 }
            else if (base != cur) { print "family " base " split"; bad = 1 }
        }
        END { exit bad }' "$m"
check "counters end in _total" \
    awk '/^# TYPE / && $4 == "counter" && $3 !~ /_total$/ { bad = 1 } END { exit bad }' "$m"
check "the families of the brief are there" \
    sh -c "for f in weft_events_published_total weft_events_received_total weft_events_dropped_total \
                   weft_gaps_total weft_repaired_total weft_handler_errors_total \
                   weft_dead_lettered_total weft_malformed_total weft_node_up weft_outbox_events \
                   weft_peers_up weft_peers_down weft_topic_events_total weft_topic_bytes_total \
                   weft_delivery_latency_seconds; do
               grep -q \"^# TYPE \$f \" '$m' || { echo \"     missing \$f\"; exit 1; }
           done"
check "the publisher is up, with role and instance labels" \
    grep -Eq '^weft_node_up\{node="exp-pub",role="cli",instance="[0-9]+"\} 1$' "$dir/metrics.first"
check "the exporter sees itself with role exporter" \
    grep -Eq '^weft_node_up\{node="exp-exporter",role="exporter",instance="[0-9]+"\} 1$' "$m"
check "per-topic counters: the publisher's events out on load.x equal $N" \
    grep -Eq "^weft_topic_events_total\{topic=\"load.x\",node=\"exp-pub\",[^}]*direction=\"out\"\} $N$" "$m"
check "per-topic counters: the subscriber's events in on load.x (its last heartbeat's count)" \
    grep -Eq "^weft_topic_events_total\{topic=\"load.x\",node=\"exp\\\\\"sub\\\\\\\\x\",[^}]*direction=\"in\"\} [1-9][0-9]*$" "$m"
check "label values are escaped (quote and backslash in a node name)" \
    grep -qF "weft_node_up{node=\"$sub_label\"," "$m"
check "the subscriber's latency histogram is cumulative and ends with +Inf == _count >= 1" \
    env L="$sub_label" awk -v n=1 '
        BEGIN { l = ENVIRON["L"] }
        index($0, "weft_delivery_latency_seconds_bucket{node=\"" l "\"") == 1 {
            if ($2 + 0 < prev) bad = 1
            prev = $2 + 0; buckets++
            if ($0 ~ /le="\+Inf"/) inf = $2
            else if (inf != "") bad = 1   # +Inf must be the last bucket
        }
        index($0, "weft_delivery_latency_seconds_count{node=\"" l "\"") == 1 { count = $2 }
        index($0, "weft_delivery_latency_seconds_sum{node=\"" l "\"") == 1 { sum = $2 }
        END { exit !(!bad && buckets > 2 && inf != "" && inf == count && count + 0 >= n && sum != "") }' "$m"
check "le values are in seconds (1 us is 1e-06)" \
    grep -q 'weft_delivery_latency_seconds_bucket{[^}]*le="1e-06"}' "$m"

# 5. Usage and shutdown.
"$exporter" --help >/dev/null 2>&1
check "weft-exporter --help exits 0" test $? -eq 0
"$exporter" --listen nonsense >/dev/null 2>&1
check "a bad --listen is a usage error (2)" test $? -eq 2
kill -TERM "$exp"
wait "$exp"
check "SIGTERM stops the exporter with status 0" test $? -eq 0
exit $fail
