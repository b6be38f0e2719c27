DROP STATISTICS IF EXISTS search_string_param_norm;
