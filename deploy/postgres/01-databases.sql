-- Run once by the postgres image on an empty data directory (mounted at
-- /docker-entrypoint-initdb.d by docker-compose.yml): one database per service.
-- `python -m chassis.migrate <service>` also creates its database when missing.
CREATE DATABASE accounts;
CREATE DATABASE consulting;
CREATE DATABASE matching;
CREATE DATABASE notify;
CREATE DATABASE activities;
CREATE DATABASE insights;
