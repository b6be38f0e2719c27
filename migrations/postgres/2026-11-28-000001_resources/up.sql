-- Every version of every resource (http.html#history). The current version of (type, id)
-- is the one row with is_current, found through resource_versions_current.
CREATE TABLE resource_versions (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    res_type TEXT NOT NULL,
    res_id TEXT NOT NULL,
    version_id BIGINT NOT NULL,
    is_current BOOLEAN NOT NULL,
    deleted BOOLEAN NOT NULL,
    method TEXT NOT NULL,
    last_updated BIGINT NOT NULL,
    content TEXT
);
CREATE UNIQUE INDEX resource_versions_version ON resource_versions (res_type, res_id, version_id);
CREATE UNIQUE INDEX resource_versions_current ON resource_versions (res_type, res_id) WHERE is_current;
CREATE INDEX resource_versions_type_updated ON resource_versions (res_type, last_updated);
CREATE INDEX resource_versions_updated ON resource_versions (last_updated);

-- Token search index of current versions (search.html#token). Filled at write time in the
-- same transaction; system is '' when the token has none. The key leads with what a
-- search gives (type, parameter, code), so lookups use it; the second index serves the
-- replacement of a resource's rows.
CREATE TABLE search_token (
    res_type TEXT NOT NULL,
    param TEXT NOT NULL,
    code TEXT NOT NULL,
    system TEXT NOT NULL,
    res_id TEXT NOT NULL,
    PRIMARY KEY (res_type, param, code, system, res_id)
);
CREATE INDEX search_token_resource ON search_token (res_type, res_id);
