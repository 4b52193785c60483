#!/bin/sh
# The read-only role Grafana connects as (run once, when the postgres volume is created).
# It may only read: every transaction is read-only, and it gets SELECT on nothing here;
# the store grants it the window_counts view and the two tables behind it when it creates
# them (consumers/sqlviews.py). The password comes from GRAFANA_DB_PASSWORD; psql quotes it.
set -eu
psql -v ON_ERROR_STOP=1 -v reader_password="$GRAFANA_DB_PASSWORD" \
     --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE vardgaranti_reader LOGIN PASSWORD :'reader_password';
ALTER ROLE vardgaranti_reader SET default_transaction_read_only = on;
ALTER ROLE vardgaranti_reader SET jit = off;
ALTER ROLE vardgaranti_reader SET statement_timeout = '30s';
GRANT USAGE ON SCHEMA public TO vardgaranti_reader;
SQL
