#!/usr/bin/env bash
# First-start initialisation of the compose PostgreSQL (postgres image, /docker-entrypoint-initdb.d).
#
# One role and one database per service, each role alone allowed to connect to its own
# database (and owning it, so its migrations can create tables in schema public), with the
# btree_gist extension the booking constraints need. Passwords come from
# <SERVICE>_DB_PASSWORD (IDENTITY_DB_PASSWORD, ...), set in deploy/compose.yaml.
#
# The entrypoint runs it only when the data directory is empty. It is idempotent all the
# same (an existing role gets its password reset), works whether the entrypoint executes
# or sources it, and honours the usual PG* variables (PGHOST, PGPORT, PGPASSWORD).

cortex_init_databases() (
    set -euo pipefail
    local services=(identity booking calendars billing)
    local service variable
    for service in "${services[@]}"; do
        variable="${service^^}_DB_PASSWORD"
        if [ -z "${!variable:-}" ]; then
            echo "cortex init: $variable is not set" >&2
            return 1
        fi
        echo "cortex init: role and database '$service'"
        psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
            --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
            --set name="$service" --set password="${!variable}" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'name', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
REVOKE CONNECT, TEMPORARY ON DATABASE :"name" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"name" TO :"name";
\connect :"name"
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER SCHEMA public OWNER TO :"name";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SQL
    done
)

cortex_init_databases
