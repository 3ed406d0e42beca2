-- `metricsctl demo` only, on its throwaway server: a login role for the monitoring step.
CREATE ROLE :"role" LOGIN PASSWORD :'password';
