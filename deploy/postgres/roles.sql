-- icsflow on PostgreSQL: a database, an owner role and a least-privilege application role.
--
-- Why two roles: the owner owns the schema and runs the migrations (`icsflow db upgrade`); the
-- application role (the daemon, the web page, every other command) reads and writes rows and
-- can change no table: it cannot CREATE, ALTER, DROP or TRUNCATE, so a bug or a leaked
-- application password can at worst change rows (which history records), never drop a table.
--
-- Run it as a superuser (the postgres role). It is safe to run again, to change a password
-- or after a restore (roles and database are made only when missing; grants are repeated):
--
--   runuser -u postgres -- psql -v ON_ERROR_STOP=1 \
--       -v owner=icsflow_owner -v app=icsflow_app -v dbname=icsflow \
--       -v owner_password="$OWNER_PASSWORD" -v app_password="$APP_PASSWORD" \
--       < deploy/postgres/roles.sql
--
-- The variables: owner, app and dbname are names (letters, digits, _); the passwords are
-- optional (without them the roles log in by peer or certificate authentication only, as
-- pg_hba.conf decides). Everything lives in a schema named `icsflow` in database :dbname,
-- the database's search_path, so no URL needs to name it.

\set ON_ERROR_STOP on
\if :{?owner}
\else
  DO $$ BEGIN RAISE EXCEPTION 'roles.sql: set -v owner=NAME (the role that owns the schema and runs migrations)'; END $$;
\endif
\if :{?app}
\else
  DO $$ BEGIN RAISE EXCEPTION 'roles.sql: set -v app=NAME (the role the daemon and web page log in as)'; END $$;
\endif
\if :{?dbname}
\else
  DO $$ BEGIN RAISE EXCEPTION 'roles.sql: set -v dbname=NAME (the database to create)'; END $$;
\endif

-- The roles: LOGIN, nothing else (no SUPERUSER, CREATEDB, CREATEROLE, REPLICATION).
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', :'app')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app') \gexec
\if :{?owner_password}
  SELECT format('ALTER ROLE %I PASSWORD %L', :'owner', :'owner_password') \gexec
\endif
\if :{?app_password}
  SELECT format('ALTER ROLE %I PASSWORD %L', :'app', :'app_password') \gexec
\endif

-- The database, owned by the owner role, UTF-8.
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'dbname', :'owner',
              'UTF8')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'dbname') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'dbname') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', :'dbname', :'app') \gexec

\connect :dbname

-- One schema, owned by the owner role; nobody else may create anything in it or in public.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SELECT format('CREATE SCHEMA IF NOT EXISTS icsflow AUTHORIZATION %I', :'owner') \gexec
SELECT format('GRANT USAGE ON SCHEMA icsflow TO %I', :'app') \gexec
-- Every session in this database finds the tables without a schema prefix.
SELECT format('ALTER DATABASE %I SET search_path = icsflow', :'dbname') \gexec

-- Rows, not tables: what the application may do to every table and sequence the owner's
-- migrations create, now (the GRANTs, for a second run) and later (the default privileges).
SELECT format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA icsflow TO %I',
              :'app') \gexec
SELECT format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA icsflow TO %I', :'app') \gexec
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA icsflow '
              'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', :'owner', :'app') \gexec
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA icsflow '
              'GRANT USAGE, SELECT ON SEQUENCES TO %I', :'owner', :'app') \gexec

\echo 'roles.sql: done. Next, as the owner role: ICSFLOW_DB=postgresql+psycopg://OWNER@HOST/DB icsflow db upgrade'
