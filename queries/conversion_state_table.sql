-- `partitions enable` (online): metricsctl's bookkeeping of a conversion in progress, so that a
-- killed run's rerun knows where it stopped. One row; dropped when the conversion is done.
CREATE TABLE IF NOT EXISTS metricsctl_conversion (
    one_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (one_row),
    phase TEXT NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    heartbeat TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    -- Rows with ids up to this were in metrics before the mirror trigger; the backfill copies them.
    backfill_up_to BIGINT,
    copied_up_to BIGINT NOT NULL DEFAULT 0,
    rows_copied BIGINT NOT NULL DEFAULT 0,
    rows_estimate BIGINT NOT NULL DEFAULT 0,
    pid INTEGER
);
