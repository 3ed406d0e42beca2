-- metricsctl's own bookkeeping (like refinery's history table; the guide's two tables stay as they
-- are): the events whose monthly partition retention dropped while their guard rows were kept. The
-- guard rows keep them retired — the consumer's insert pattern and replay skip them — and this
-- table tells `check duplicates` that their metric was retired, not lost. metricsctl reads it only
-- when it is a table owned by the owner of the guide's tables (or a superuser).
CREATE TABLE IF NOT EXISTS :"schema".metricsctl_retired_events (
    event_id VARCHAR(255) PRIMARY KEY,
    month DATE NOT NULL,
    retired_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX IF NOT EXISTS metricsctl_retired_events_month ON :"schema".metricsctl_retired_events (month);
