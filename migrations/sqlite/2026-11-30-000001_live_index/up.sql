-- The live resources (current, not deleted) by type and id: searches walk and probe it
-- without reading the table, and read the content of a page's rows only.
CREATE INDEX IF NOT EXISTS resource_versions_live ON resource_versions (res_type, res_id) WHERE is_current AND NOT deleted;
