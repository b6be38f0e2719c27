-- PostgreSQL's extended statistics on search_string (param, norm) have no SQLite
-- counterpart; the migration exists so that both backends keep the same names.
SELECT 1;
