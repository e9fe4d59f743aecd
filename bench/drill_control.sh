# Sourced by bench/faults.sh and bench/cluster.sh: the shell side of a
# drill. The Python load generator asks for each fault by writing a line to
# $WORK/ctl.req and waits for "ok" (or "failed: …") on $WORK/ctl.rep; the
# shell starts and stops every service itself, so its cleanup knows every
# pid (the array PIDS of the sourcing script).

# SIGKILL one of our processes, reap it, and drop it from PIDS.
stop_pid() {
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local kept=() pid
    for pid in "${PIDS[@]}"; do [ "$pid" = "$1" ] || kept+=("$pid"); done
    PIDS=("${kept[@]}")
}

# The two FIFOs, open on descriptors 7 (requests) and 8 (replies).
open_controls() {
    mkfifo "$WORK/ctl.req" "$WORK/ctl.rep"
    exec 7<>"$WORK/ctl.req" 8<>"$WORK/ctl.rep"
}

# Answers the load generator ($1, its pid) until it says "done" or exits:
# each other request is given to the function named $2, which acts on it
# and may set `reply` (already "ok") to "failed: …".
serve_controls() {
    local load=$1 handle=$2 cmd="" partial="" reply
    while :; do
        # A read that times out in the middle of a line keeps what it read
        # in `cmd` (bash reads a pipe a byte at a time): kept in `partial`
        # for the next read, or a command would lose its first letters.
        if read -r -t 1 -u 7 cmd; then
            cmd="$partial$cmd"
            partial=""
            if [ "$cmd" = done ]; then
                echo ok >&8
                return
            fi
            reply=ok
            "$handle" "$cmd"
            echo "$reply" >&8
        else
            partial="$partial$cmd"
            kill -0 "$load" 2>/dev/null || return
        fi
    done
}
