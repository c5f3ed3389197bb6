#!/usr/bin/env bash
# The replica's entrypoint: on first start, clone the primary with pg_basebackup (-R writes
# standby.signal and primary_conninfo; -C -S keeps a replication slot so the primary holds WAL the
# replica still needs), then hand over to the image's own entrypoint, which finds PGDATA
# initialised and starts postgres as a hot standby.
set -euo pipefail
PGDATA=${PGDATA:-/var/lib/postgresql/data}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -h "$PRIMARY_HOST" -p 5432 -q; do sleep 1; done
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 700 "$PGDATA"
  PGPASSWORD="$REPLICATION_PASSWORD" gosu postgres pg_basebackup \
    -h "$PRIMARY_HOST" -p 5432 -U replicator -D "$PGDATA" -R -X stream -C -S replica1
fi
exec docker-entrypoint.sh "$@"
