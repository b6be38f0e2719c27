DROP INDEX CONCURRENTLY IF EXISTS resource_versions_live;
