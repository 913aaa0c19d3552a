-- Placeholder for the schedules migration (0004), which comes with the
-- schedule catalog; replace this file with it when merging.
SELECT 1;
