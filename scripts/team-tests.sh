#!/usr/bin/env bash
# Runs the tests marked `team` against an MLflow tracking server backed by PostgreSQL that
# serves artifacts: a throwaway database cluster and server on 127.0.0.1, stopped afterwards.
# TCP connections need a (random, per-run) password, as a real team database would; the
# server gets its URI through MLFLOW_BACKEND_STORE_URI, so `ps` never shows the password.
# Installs PostgreSQL from Debian's packages when it is missing. Exit code: pytest's.
#   scripts/team-tests.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${TEAM_TESTS_PYTHON:-.venv/bin/python}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
PGBIN=$(pg_bin)
if [ -z "$PGBIN" ]; then
  echo "team-tests: installing PostgreSQL from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y postgresql >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y postgresql >/dev/null; }
  PGBIN=$(pg_bin)
fi

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

WORK=$(mktemp -d /tmp/mlops-team.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/pg" "$WORK/sock" "$WORK/artifacts"
# PostgreSQL refuses to run as root: its files belong to the postgres user then
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$WORK/pg" "$WORK/sock"
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

MLFLOW_PID=""
cleanup() {
  if [ -n "$MLFLOW_PID" ]; then
    # the server's whole process group: SIGTERM, up to 30 s for its workers, then SIGKILL
    kill -TERM -- "-$MLFLOW_PID" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 -- "-$MLFLOW_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$MLFLOW_PID" 2>/dev/null || true
  fi
  as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast -w -t 60 stop >/dev/null 2>&1 ||
    as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
  echo "team-tests: stopped PostgreSQL and MLflow after ${SECONDS} s" >&2
}
trap cleanup EXIT INT TERM

PGPORT=$(free_port)
PGPASS=$("$PY" -c 'import secrets; print(secrets.token_hex(12))')
# the password goes through a file only the postgres user reads, not initdb's arguments
(umask 077 && printf '%s\n' "$PGPASS" >"$WORK/sock/pwfile")
[ "$(id -u)" = 0 ] && chown postgres "$WORK/sock/pwfile"
as_pg "$PGBIN/initdb" -D "$WORK/pg" -U mlops --auth-local=trust --auth-host=scram-sha-256 \
  --pwfile="$WORK/sock/pwfile" --no-sync >/dev/null
rm -f "$WORK/sock/pwfile"
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/sock/postgres.log" -w -t 120 \
  -o "-h 127.0.0.1 -p $PGPORT -k $WORK/sock -c fsync=off -c max_connections=200" start >/dev/null
as_pg "$PGBIN/createdb" -h "$WORK/sock" -p "$PGPORT" -U mlops mlflow
DB_URI="postgresql+psycopg2://mlops:$PGPASS@127.0.0.1:$PGPORT/mlflow"

MLPORT=$(free_port)
# idle connections kept as long as `jupyter mlops server` keeps them
KEEP_ALIVE=$("$PY" -c 'from jupyter_mlops.team.server import KEEP_ALIVE_S; print(KEEP_ALIVE_S)')
# its own process group, so the cleanup stops the server's workers too
MLFLOW_BACKEND_STORE_URI="$DB_URI" setsid "$PY" -m mlflow server \
  --artifacts-destination "$WORK/artifacts" \
  --host 127.0.0.1 --port "$MLPORT" --workers 2 --uvicorn-opts "--timeout-keep-alive $KEEP_ALIVE" \
  >"$WORK/mlflow.log" 2>&1 &
MLFLOW_PID=$!
disown "$MLFLOW_PID"  # stopped by cleanup; no job-control notice when it is killed
URL="http://127.0.0.1:$MLPORT"
# a deadline, not a count of tries: on a busy machine each try takes longer
READY_BY=$((SECONDS + 300))
until "$PY" -c "import urllib.request as u; u.urlopen('$URL/health', timeout=5)" 2>/dev/null; do
  if ! kill -0 "$MLFLOW_PID" 2>/dev/null; then cat "$WORK/mlflow.log" >&2; exit 1; fi
  if [ $SECONDS -ge $READY_BY ]; then
    echo "team-tests: the MLflow server did not answer on $URL within 300 s" >&2
    tail -n 40 "$WORK/mlflow.log" >&2
    exit 1
  fi
  sleep 0.5
done
echo "team-tests: MLflow server $URL on PostgreSQL 127.0.0.1:$PGPORT (ready after ${SECONDS} s)" >&2

set +e
# pytest's environment (not its arguments) carries the database URI, for the tests that
# start a team server of their own
JUPYTER_MLOPS_TEST_TRACKING_URI="$URL" JUPYTER_MLOPS_TEST_POSTGRES_URI="$DB_URI" \
  "$PY" -m pytest -m team -p no:cacheprovider "$@"
status=$?
set -e
if [ $status -ne 0 ]; then tail -n 40 "$WORK/mlflow.log" >&2; fi
exit $status
