#!/bin/sh
# test_top_tmux.sh - weft-top's full screen, driven through a detached tmux session of a fixed
# size: every view (keys 1-5 and Tab) shows its title and columns, s/S change the sort column,
# / filters (Enter applies, Esc clears), p pauses, h shows the help, a resize is redrawn, and q
# quits with status 0. Skipped (exit 0) when tmux is not installed. The tmux server is a
# private one (-L) that the test kills at the end.
#
#   test_top_tmux.sh PATH/TO/weft-top
set -u
top=$1
if ! command -v tmux >/dev/null 2>&1; then
    echo "skip: tmux is not installed (tools/install-deps.sh installs it)"
    exit 0
fi
dir=$(mktemp -d /tmp/weft-top-tmux.XXXXXX)
sock="weft-top-test-$$"
fail=0
tm() { tmux -L "$sock" -f /dev/null "$@"; }
cleanup() {
    tm kill-server 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

check() { # check DESCRIPTION COMMAND...
    desc=$1; shift
    if "$@"; then echo "ok  : $desc"; else echo "FAIL: $desc"; fail=1; fi
}

# screen_has PATTERN...: polls the pane (up to 5 s) until every grep pattern is on it.
screen_has() {
    i=0
    while [ $i -lt 50 ]; do
        tm capture-pane -p -t top >"$dir/screen" 2>/dev/null
        all=1
        for p in "$@"; do grep -q -- "$p" "$dir/screen" || all=0; done
        [ $all -eq 1 ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    echo "     screen was:"; sed 's/^/     | /' "$dir/screen"
    return 1
}

screen_lacks() { # screen_lacks PATTERN: polls (up to 5 s) until PATTERN is gone
    i=0
    while [ $i -lt 50 ]; do
        tm capture-pane -p -t top >"$dir/screen" 2>/dev/null
        grep -q -- "$1" "$dir/screen" || return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

key() { tm send-keys -t top "$@"; }

# weft-top alone on a fabric of its own; the wrapper records its exit status.
cat >"$dir/run.sh" <<EOF
#!/bin/sh
"$top" --seed none --gossip-bind none --name tmux-top -d 0.5
echo \$? >"$dir/status"
EOF
chmod +x "$dir/run.sh"
tm new-session -d -s top -x 120 -y 40 "$dir/run.sh"
check "the Nodes view shows its columns and weft-top itself" \
    screen_has " 1 Nodes " "NAME  *ROLE  *HOST:PID  *STATE" "tmux-top  *monitor  *[^ ]*  *up" "Nodes: rows 1-1 of 1"
check "the header shows fabric totals and the rate history" \
    screen_has "^weft-top  nodes 1 up, 0 down | out " "^out/s "
key 2
check "2: the Topics view" screen_has "TOPIC  *PUBS  *SUBS  *OUT/S  *IN/S" "Topics: rows"
key 3
check "3: the Lag view" screen_has "SUBSCRIBER  *SOURCE  *SEQ_LAG  *TIME_LAG" "Lag: rows"
key 4
check "4: the Archiver view" \
    screen_has "NODE  *STATE  *LAST_OFFSET  *EVENTS/S  *ON_DISK" "Archiver: rows" "no archiver has sent"
key 5
check "5: the DLQ view" screen_has "NODE  *STATE  *PENDING  *PARKED  *OLDEST" "DLQ: rows" "no DLQ has sent"
key Tab
check "Tab wraps around to the Nodes view" screen_has "NAME  *ROLE" "Nodes: rows"
key Tab
check "Tab moves to the next view" screen_has "TOPIC  *PUBS" "Topics: rows"
key 1
key s
check "s sorts by the next column" screen_has "sort ROLE asc"
key s
key s
key s
check "s on a numeric column sorts largest first" screen_has "sort UPTIME desc"
for n in 1 2 3 4 5; do key S; done
check "S goes back through the columns, wrapping around" screen_has "sort INST asc"
key S
check "S again" screen_has "sort LAST desc"
key /
check "/ opens the filter prompt" screen_has "^filter:"
key -l "zzz"
key Enter
check "Enter applies the filter" screen_has "filter 'zzz'" "no row matches the filter"
key /
key BSpace
key BSpace
key BSpace
key -l "TMUX"
key Enter
check "a matching filter shows the row, ignoring case" \
    screen_has "filter 'TMUX'" "tmux-top  *monitor"
key Escape
check "Esc clears the filter" screen_lacks "filter 'TMUX'"
key p
check "p pauses" screen_has "PAUSED"
key p
check "p again resumes" screen_lacks "PAUSED"
key h
check "h shows the help" screen_has "weft-top keys" "s / S  *sort by the next"
key x
check "any key closes the help" screen_lacks "weft-top keys"
tm resize-window -t top -x 90 -y 24
check "a resize is redrawn to the new size" \
    sh -c "tm() { tmux -L '$sock' -f /dev/null \"\$@\"; }
           i=0; while [ \$i -lt 50 ]; do
               tm capture-pane -p -t top > '$dir/resized'
               [ \$(wc -l < '$dir/resized') -eq 24 ] && sed -n 24p '$dir/resized' | grep -q 'Nodes: rows' && exit 0
               sleep 0.1; i=\$((i + 1))
           done; exit 1"
key Down
key NPage
key Right
check "scrolling keys keep the screen whole" screen_has "Nodes: rows 1-"
key q
i=0
while [ ! -s "$dir/status" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
check "q quits weft-top with status 0" test "$(cat "$dir/status" 2>/dev/null)" = "0"
exit $fail
