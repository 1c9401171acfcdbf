# Shared bash helpers for scripts/*. Source it; do not run it.
#
#   . "$(dirname "$0")/lib/common.sh"
#
# Provides: MXRAY_ROOT (the repository root), log/warn/die, is_root, free_port,
# apt_ensure PKG... (installs missing Debian packages, only when something is missing),
# http_get URL (curl, else python3).

set -euo pipefail

MXRAY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export MXRAY_ROOT

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
warn() { printf '%s: warning: %s\n' "$(basename "$0")" "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2
    exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# A TCP port on 127.0.0.1 that is free right now (the kernel picks it).
free_port() {
    python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# True when the Debian package is installed.
pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# Installs the named Debian packages that are missing. Runs `apt-get update` once, and only
# when something is missing. As a normal user it cannot install: it names what is missing.
apt_ensure() {
    local missing=() p
    for p in "$@"; do
        pkg_installed "$p" || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    # Tests run in parallel and may want the same package at once; apt takes its own lock and
    # fails at once when another apt holds it. So installs take turns, and a turn that finds
    # its packages installed by the one before it does nothing.
    local lock_fd
    exec {lock_fd}>>"${TMPDIR:-/tmp}/mxray-apt.lock"
    flock "$lock_fd"
    missing=()
    for p in "$@"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        exec {lock_fd}>&-
        return 0
    fi
    if ! is_root; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            log "installing with sudo: ${missing[*]}"
            sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
            sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
            exec {lock_fd}>&-
            return 0
        fi
        die "missing Debian packages (install them as root): apt-get install ${missing[*]}"
    fi
    log "installing: ${missing[*]}"
    # Packages such as unbound, nsd, nginx and postfix start their daemons on install; an
    # unbound started that way would query the Internet's root servers. Tests start their own
    # daemons with private configs, so forbid service starts while installing (policy-rc.d,
    # exit 101), unless the machine already has its own policy.
    local policy=/usr/sbin/policy-rc.d ours=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# mxray scripts/test: no service starts during package installs\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        ours=1
    fi
    local rc=0
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || rc=$?
    if [ "$rc" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    fi
    [ "$ours" -eq 1 ] && rm -f "$policy"
    exec {lock_fd}>&-
    return "$rc"
}

# GET a URL and print the body; fails on HTTP errors.
http_get() {
    if command -v curl >/dev/null; then
        curl -fsS --max-time 5 "$1"
    else
        python3 -c 'import sys,urllib.request;sys.stdout.write(urllib.request.urlopen(sys.argv[1],timeout=5).read().decode())' "$1"
    fi
}
