-- Sets the search path for the rest of the transaction: `migrate` runs the guide's migration files
-- (which create unqualified) with the tables' schema first, then pins pg_catalog first again.
SELECT pg_catalog.set_config('search_path', :'search_path', true);
