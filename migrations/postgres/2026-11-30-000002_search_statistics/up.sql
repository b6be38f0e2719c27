-- Which (parameter, value) pairs are common, for the planner: without it PostgreSQL
-- multiplies the selectivity of `param = 'family'` by that of a `norm` prefix over all
-- parameters' values, estimates a family name's rows at 1 (7,991 at 1M patients), and
-- drives a family+birthdate search from the name; `name=nguyen` hashed 38% of the
-- Patients before taking a page. With the common pairs it drives from the birth date
-- (1.7 ms instead of 371 ms) and walks the live Patients in id order for a common name
-- (1.9 ms instead of 1,977 ms). bench/README.md, session 4.
CREATE STATISTICS IF NOT EXISTS search_string_param_norm (mcv) ON param, norm FROM search_string;
ALTER STATISTICS search_string_param_norm SET STATISTICS 2000;
