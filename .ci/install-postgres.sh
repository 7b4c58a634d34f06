#!/usr/bin/env bash
# Make initdb, pg_ctl and postgres available on PATH for tests/integration/test_pg_backend.py,
# which starts its own throwaway PostgreSQL server on 127.0.0.1.
#
# Nothing to do when they are already there. Otherwise install Debian's server package and
# link its binaries into /usr/local/bin (Debian keeps them in /usr/lib/postgresql/<ver>/bin,
# off PATH). No cluster is created or started here: the tests run their own.
set -euo pipefail

have_all() {
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1
}

link_debian_binaries() {
    local bindir
    # The newest installed major version.
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$bindir" ] || return 1
    for tool in initdb pg_ctl postgres; do
        if [ -x "$bindir/$tool" ]; then
            ln -sf "$bindir/$tool" "/usr/local/bin/$tool"
        fi
    done
}

if have_all; then
    echo "install-postgres: $(command -v initdb) present, nothing to do"
    exit 0
fi

# Installed but off PATH (Debian layout)?
if link_debian_binaries 2>/dev/null && have_all; then
    echo "install-postgres: linked $(readlink -f "$(command -v initdb)") into /usr/local/bin"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-postgres: no initdb and no apt-get — install PostgreSQL server binaries (initdb, pg_ctl, postgres) yourself" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

# Keep the package from creating (and trying to start) a default cluster: the tests start
# their own server in a temporary directory.
$SUDO mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/no-main-cluster.conf >/dev/null

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
$SUDO bash -c "$(declare -f link_debian_binaries); link_debian_binaries"

if ! have_all; then
    echo "install-postgres: installed the postgresql package but initdb/pg_ctl/postgres are still not on PATH" >&2
    exit 1
fi
echo "install-postgres: installed $(postgres --version)"
