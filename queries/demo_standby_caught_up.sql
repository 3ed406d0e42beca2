-- demo: whether this server is a standby that has replayed the primary's WAL up to :'wal_lsn'.
-- psql "$STANDBY_URL" -v wal_lsn=0/3000060 -f queries/demo_standby_caught_up.sql
SELECT pg_catalog.pg_is_in_recovery()
       AND COALESCE(pg_catalog.pg_last_wal_replay_lsn() OPERATOR(pg_catalog.>=)
                    CAST(:'wal_lsn' AS pg_catalog.pg_lsn), false) AS caught_up;
