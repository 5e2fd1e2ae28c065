#!/bin/sh
# Makes the database cluster on the first start (an empty volume), then runs the server.
set -eu
bin=$(echo /usr/lib/postgresql/*/bin)
export PATH="$bin:$PATH"
: "${POSTGRES_DB:=$POSTGRES_USER}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "POSTGRES_PASSWORD must be set to make the database" >&2
    exit 1
  fi
  password_file=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" >"$password_file"
  initdb --pgdata "$PGDATA" --username "$POSTGRES_USER" --pwfile "$password_file" \
    --auth-local trust --auth-host scram-sha-256 --encoding UTF8 >/dev/null
  rm -f "$password_file"
  # Clients come from the stack's network, with the password.
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl --pgdata "$PGDATA" --options "-c listen_addresses=''" --wait --silent start
  if [ "$POSTGRES_DB" != postgres ]; then
    createdb --username "$POSTGRES_USER" "$POSTGRES_DB"
  fi
  pg_ctl --pgdata "$PGDATA" --mode fast --wait --silent stop
  echo "made the database $POSTGRES_DB in $PGDATA"
fi

exec postgres -D "$PGDATA" -c listen_addresses='*'
