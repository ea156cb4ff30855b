#!/usr/bin/env bash
# Measures what a memory attack costs the release interop-server:
#
#   tests/interop/attack-rss.sh [ATTACK...]      (default: many-streams tiny-frames)
#
# For each attack (an `h2-attack --attack` name): builds the release interop-server and
# h2-attack, starts the server on a free loopback port, samples its VmRSS every 100 ms (the
# baseline is the highest sample in the second before the attack), runs the attack for
# ATTACK_SECONDS (default 10) while h2-attack's probe mode times a unary EmptyCall every 200 ms
# on a second connection, then prints the baseline, the peak, their difference, the kernel's
# VmHWM, and the worst probe latency. Uses $CARGO_TARGET_DIR (default: target).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
seconds=${ATTACK_SECONDS:-10}
attacks=("$@")
[ ${#attacks[@]} -gt 0 ] || attacks=(many-streams tiny-frames)

(cd "$root" && cargo build --release -q -p anygrpc-interop --bin interop-server --bin h2-attack)
bin=$target/release
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

for attack in "${attacks[@]}"; do
    "$bin/interop-server" --port=0 >"$work/server.out" 2>"$work/server.err" &
    server=$!
    port=
    for _ in $(seq 100); do
        port=$(sed -n 's/^listening on \([0-9]*\)$/\1/p' "$work/server.out")
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || { echo "interop-server did not start" >&2; cat "$work/server.err" >&2; exit 1; }

    # The sampler: one VmRSS value (kB) a line, every 100 ms, while the server lives.
    (while kill -0 "$server" 2>/dev/null; do rss_kb "$server"; sleep 0.1; done) >"$work/rss" &
    sampler=$!
    sleep 1
    baseline=$(sort -n "$work/rss" | tail -1)
    before=$(wc -l <"$work/rss")

    "$bin/h2-attack" --addr "127.0.0.1:$port" --attack probe --seconds $((seconds + 2)) \
        >"$work/probe.out" 2>"$work/probe.err" &
    probe=$!
    "$bin/h2-attack" --addr "127.0.0.1:$port" --attack "$attack" --seconds "$seconds" \
        >"$work/attack.out" 2>&1 || true
    wait "$probe" || true

    peak=$(tail -n +$((before + 1)) "$work/rss" | sort -n | tail -1)
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$server/status")
    kill "$sampler" "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=

    echo "== $attack ($seconds s) against interop-server on port $port"
    sed 's/^/  attack: /' "$work/attack.out"
    sed 's/^/  probe:  /' "$work/probe.out"
    grep -c . "$work/probe.err" >/dev/null && sed 's/^/  probe failure: /' "$work/probe.err" | head -5
    awk -v b="$baseline" -v p="$peak" -v h="$hwm" 'BEGIN {
        printf "  baseline RSS %.1f MiB, peak RSS %.1f MiB, peak - baseline %.1f MiB (VmHWM %.1f MiB)\n",
            b / 1024, p / 1024, (p - b) / 1024, h / 1024 }'
done
