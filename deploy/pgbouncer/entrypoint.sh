#!/bin/sh
# The gateway role's password comes from the environment, not from a file in the repository:
# write PgBouncer's auth_file, then run it in the foreground.
set -eu
umask 077
printf '"gateway" "%s"\n' "$POSTGRES_PASSWORD" > /tmp/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
