-- `partitions enable` (online): metricsctl's bookkeeping of a conversion in progress, so that a
-- killed run's rerun knows where it stopped. One row; dropped when the conversion is done.
CREATE TABLE IF NOT EXISTS :"schema".metricsctl_conversion (
    one_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (one_row),
    phase TEXT NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT pg_catalog.now(),
    heartbeat TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT pg_catalog.now(),
    -- Rows with ids up to this were in metrics before the mirror trigger; the backfill copies them.
    backfill_up_to BIGINT,
    copied_up_to BIGINT NOT NULL DEFAULT 0,
    rows_copied BIGINT NOT NULL DEFAULT 0,
    rows_estimate BIGINT NOT NULL DEFAULT 0,
    pid INTEGER,
    -- Why the last run stopped, and in which phase (`--status` shows it).
    stopped_by TEXT
);
