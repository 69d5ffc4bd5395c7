#!/usr/bin/env bash
# Make sure the local PostgreSQL and Redis used by the test suite are running (starts them if not).
set -euo pipefail

wait_for() {  # wait_for <description> <command...>: up to 30 s
    local what="$1"; shift
    for _ in $(seq 1 30); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    echo "error: $what did not come up" >&2
    return 1
}

if ! pg_isready -h 127.0.0.1 -q; then
    echo "==> starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
    wait_for PostgreSQL pg_isready -h 127.0.0.1 -q
fi

if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    echo "==> starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_for Redis redis-cli -h 127.0.0.1 ping
fi
