DROP INDEX IF EXISTS resource_versions_live;
