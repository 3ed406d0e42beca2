-- Settings of every metricsctl connection. JIT compilation pays off only on long scans, yet the
-- planner's estimates over big tables (a window bound it cannot see at plan time) pass
-- jit_above_cost for queries that answer from indexes in milliseconds, and compiling then costs
-- more than the query: on 10M rows `rate` took 267 ms with JIT and 6 ms without, `lag` 117 and
-- 31 ms (bench/scale.sh).
SET jit = off;
