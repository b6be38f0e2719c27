DROP TABLE search_token;
DROP TABLE resource_versions;
