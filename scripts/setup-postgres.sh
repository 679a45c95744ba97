#!/usr/bin/env bash
# Debian's PostgreSQL for the evidence-index tests: install if missing, start the cluster, create the
# role and database `warden_test`, and print the SQLAlchemy URL on stdout (nothing else goes to stdout).
#   export WARDEN_TEST_PG_URL="$(scripts/setup-postgres.sh)"
# Needs root (apt-get, and `su postgres` / pg_ctlcluster). Idempotent: run it as often as you like.
set -euo pipefail

DB=${WARDEN_TEST_PG_DB:-warden_test}
ROLE=${WARDEN_TEST_PG_ROLE:-warden_test}
PASSWORD=${WARDEN_TEST_PG_PASSWORD:-warden_test}
log() { echo "setup-postgres: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  log "must run as root (installs and starts Debian's PostgreSQL)"; exit 1
fi

if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
  log "installing Debian's postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi

VERSION=$(ls /usr/lib/postgresql | sort -V | tail -n1)
CLUSTER=main
if ! pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {found=1} END {exit !found}'; then
  log "creating cluster $VERSION/$CLUSTER"
  pg_createcluster "$VERSION" "$CLUSTER" >&2
fi
PORT=$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {print $3}')
if ! pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {print $4}' | grep -q online; then
  log "starting cluster $VERSION/$CLUSTER on port $PORT"
  pg_ctlcluster "$VERSION" "$CLUSTER" start >&2 || service postgresql start >&2
fi

# Wait for it to accept connections (a cold start takes a moment).
for _ in $(seq 1 30); do
  if su postgres -c "psql -p $PORT -qAtc 'select 1'" >/dev/null 2>&1; then break; fi
  sleep 1
done

psql_admin() { su postgres -c "psql -p $PORT -v ON_ERROR_STOP=1 -qAt $*" >&2; }
if [ "$(su postgres -c "psql -p $PORT -qAtc \"select 1 from pg_roles where rolname='$ROLE'\"")" != "1" ]; then
  log "creating role $ROLE"
  psql_admin "-c \"create role $ROLE login password '$PASSWORD'\""
fi
if [ "$(su postgres -c "psql -p $PORT -qAtc \"select 1 from pg_database where datname='$DB'\"")" != "1" ]; then
  log "creating database $DB"
  psql_admin "-c \"create database $DB owner $ROLE\""
fi

echo "postgresql+psycopg://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
