#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of every decoder of bytes
# memlane does not trust: the segment header, the channel config, the
# ring's records, a typed channel's type record, the CLI's
# size/duration/name arguments, and the Zenoh bridge's wire format. The
# targets are in fuzz/fuzz_targets/; their entry points in the libraries are
# `memlane::fuzzing` (which tests/fuzz_corpus also runs, without libFuzzer)
# and `memlane_zenoh::fuzzing` (replayed by its unit tests).
#
#     bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Runs each target (all of them by default) for SECONDS_PER_TARGET seconds
# (default 10), MEMLANE_FUZZ_JOBS targets at a time (default: the number of
# CPUs, `nproc`; never more than the number of targets; 1 runs them one after
# the other), prints the executions libFuzzer reports for each, and exits
# non-zero if any target found a crash, a panic or a hang (an input taking
# over 10 s), naming the input saved under fuzz/artifacts/<target>/ and the
# command that replays it. The corpus grows in fuzz/corpus/<target>/ from
# run to run (both are git-ignored).
#
# Installs cargo-fuzz if it is missing (`cargo install cargo-fuzz --locked`,
# about 1 min). Works with the stable toolchain: cargo-fuzz passes nightly
# `-Z` flags (the sanitizer and coverage options), which RUSTC_BOOTSTRAP=1
# lets stable accept. AddressSanitizer is used by default;
# MEMLANE_FUZZ_SANITIZER=none runs without it (2-4x faster here; panics and
# hangs are still caught, and every read in the targets is bounds-checked).
set -euo pipefail

cd "$(dirname "$0")/.."

secs=${1:-10}
shift || true
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -eq 0 ]; then
    echo "usage: bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
all=(header channel_config ring latest_slot type_record cli_size_duration bridge_wire)
if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=("${all[@]}")
fi
sanitizer=${MEMLANE_FUZZ_SANITIZER:-address}

# How many targets run at a time: each libFuzzer process keeps one CPU busy,
# so by default one per CPU (on CI's 2 cores the 7 targets of 10 s take 4
# rounds: 47 s instead of 81 s one after the other, measured on the AMD host).
jobs=${MEMLANE_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
if ! [[ $jobs =~ ^[0-9]+$ ]] || [ "$jobs" -eq 0 ]; then
    echo "MEMLANE_FUZZ_JOBS must be a positive number, not '$jobs'" >&2
    exit 2
fi
if [ "$jobs" -gt ${#targets[@]} ]; then jobs=${#targets[@]}; fi
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: installing it (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi

cd fuzz
echo "building the fuzz targets (sanitizer: $sanitizer)"
if [ "${targets[*]}" = "${all[*]}" ]; then
    cargo fuzz build --sanitizer "$sanitizer"
else
    for t in "${targets[@]}"; do cargo fuzz build --sanitizer "$sanitizer" "$t"; done
fi

log_dir=$(mktemp -d)
# On an early exit (Ctrl-C, a CI timeout's TERM), stop the fuzzers still
# running: each runs under its own `timeout`, which passes the signal on to
# cargo-fuzz and libFuzzer (they are in its process group, not ours).
stop_fuzzers() {
    local f
    for f in "$log_dir"/*.pid; do
        [ -e "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true
    done
    wait
    rm -rf "$log_dir"
}
trap stop_fuzzers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# fuzz_one TARGET (run in the background): libFuzzer's output goes to
# $log_dir/TARGET.log, the exit status to $log_dir/TARGET.status.
fuzz_one() {
    local t=$1 extra=() rc=0
    # The ring's input reaches the control block past 9 + 4096 bytes.
    [ "$t" = ring ] && extra=(-max_len=8448)
    mkdir -p "corpus/$t"
    # -timeout: an input that runs over 10 s is a hang (reported as a crash);
    # the outer timeout only guards against libFuzzer itself not stopping.
    timeout $((secs + 120)) cargo fuzz run --sanitizer "$sanitizer" "$t" -- \
        -max_total_time="$secs" -timeout=10 -print_final_stats=1 "${extra[@]}" \
        >"$log_dir/$t.log" 2>&1 &
    echo $! >"$log_dir/$t.pid"
    wait $! || rc=$?
    rm -f "$log_dir/$t.pid"
    echo "$rc" >"$log_dir/$t.status"
}

echo "fuzzing ${#targets[@]} target(s) for ${secs}s each, $jobs at a time"
run_start=$SECONDS
running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true # one has finished (its status is in its file)
        running=$((running - 1))
    fi
    echo "fuzzing $t for ${secs}s"
    fuzz_one "$t" &
    running=$((running + 1))
done
wait
echo "fuzzed in $((SECONDS - run_start)) s"

failed=()
summary=()
for t in "${targets[@]}"; do
    log=$log_dir/$t.log
    status=ok
    # No status file: its run did not finish (counted as a failure).
    if [ "$(cat "$log_dir/$t.status" 2>/dev/null)" != 0 ]; then
        status=FAILED
        failed+=("$t")
    fi
    # libFuzzer's last line: "Done <runs> runs in <secs> second(s)".
    runs=$(sed -n 's/^Done \([0-9]*\) runs in .*/\1/p' "$log" | tail -n 1)
    took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
    if [ -z "$runs" ]; then
        # No final line (it stopped at a crash): the last status line
        # ("#<runs> ...") has the count so far.
        runs=$({ grep -o '^#[0-9]*' "$log" || true; } | tail -n 1 | tr -d '#')
        took="<$secs"
    fi
    # (grep finds nothing when an input of the corpus crashes at once.)
    cov=$({ grep -o 'cov: [0-9]*' "$log" || true; } | tail -n 1 | cut -d' ' -f2)
    summary+=("$(printf '%-18s %12s executions in %4s s  cov %-6s %s' \
        "$t" "${runs:-?}" "${took:-?}" "${cov:-?}" "$status")")
    if [ "$status" != ok ]; then
        echo "---- $t failed; the end of its log:"
        tail -n 60 "$log"
        echo "---- inputs saved for $t:"
        ls -1 "artifacts/$t" 2>/dev/null | sed "s|^|fuzz/artifacts/$t/|" || true
        echo "replay one with: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run $t artifacts/$t/<file>)"
    fi
done

echo
echo "==== fuzzing summary (${secs}s per target, sanitizer: $sanitizer) ===="
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "crashes found in: ${failed[*]}"
    exit 1
fi
echo "no crashes"
