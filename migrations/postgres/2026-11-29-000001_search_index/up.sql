-- Search index tables of current versions, one per search parameter type (search.html).
-- Filled at write time in the write's transaction from the R4 SearchParameter definitions;
-- a resource's rows are replaced on every write and removed on delete. Each table's key
-- leads with (res_type, param, value) so searches use it; the (res_type, res_id) index
-- serves the replacement of a resource's rows. Derived keys: a token's display text is a
-- string row of "<param>:text"; a reference's identifier is a token row of
-- "<param>:identifier".

-- search.html#string: `norm` is lower case with accents and marks folded ("nguyen" for
-- "Nguyễn"), compared in byte order so a prefix is an index range; `exact` as written.
CREATE TABLE search_string (
    res_type TEXT NOT NULL,
    param TEXT NOT NULL,
    norm TEXT COLLATE "C" NOT NULL,
    exact TEXT NOT NULL,
    res_id TEXT NOT NULL
);
CREATE INDEX search_string_value ON search_string (res_type, param, norm, res_id);
CREATE INDEX search_string_resource ON search_string (res_type, res_id);

-- search.html#date: the instant range a value covers given its precision, in ms since
-- the epoch, both ends inclusive (an open period end is the largest BIGINT).
CREATE TABLE search_date (
    res_type TEXT NOT NULL,
    param TEXT NOT NULL,
    lo BIGINT NOT NULL,
    hi BIGINT NOT NULL,
    res_id TEXT NOT NULL
);
CREATE INDEX search_date_lo ON search_date (res_type, param, lo, res_id);
CREATE INDEX search_date_hi ON search_date (res_type, param, hi, res_id);
CREATE INDEX search_date_resource ON search_date (res_type, res_id);

-- search.html#number
CREATE TABLE search_number (
    res_type TEXT NOT NULL,
    param TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    res_id TEXT NOT NULL
);
CREATE INDEX search_number_value ON search_number (res_type, param, value, res_id);
CREATE INDEX search_number_resource ON search_number (res_type, res_id);

-- search.html#quantity: as written, plus a row in the canonical UCUM unit when the code
-- has a known conversion ("g" also as "kg").
CREATE TABLE search_quantity (
    res_type TEXT NOT NULL,
    param TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    system TEXT NOT NULL,
    code TEXT NOT NULL,
    res_id TEXT NOT NULL
);
CREATE INDEX search_quantity_value ON search_quantity (res_type, param, code, value, res_id);
CREATE INDEX search_quantity_resource ON search_quantity (res_type, res_id);

-- search.html#reference: local targets by (target_type, target_id); other references by
-- their absolute `url` (target_type and target_id empty).
CREATE TABLE search_reference (
    res_type TEXT NOT NULL,
    param TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    url TEXT NOT NULL,
    res_id TEXT NOT NULL
);
CREATE INDEX search_reference_target ON search_reference (res_type, param, target_id, target_type, res_id);
CREATE INDEX search_reference_reverse ON search_reference (target_type, target_id);
CREATE INDEX search_reference_url ON search_reference (res_type, param, url);
CREATE INDEX search_reference_resource ON search_reference (res_type, res_id);

-- search.html#uri
CREATE TABLE search_uri (
    res_type TEXT NOT NULL,
    param TEXT NOT NULL,
    uri TEXT COLLATE "C" NOT NULL,
    res_id TEXT NOT NULL
);
CREATE INDEX search_uri_value ON search_uri (res_type, param, uri, res_id);
CREATE INDEX search_uri_resource ON search_uri (res_type, res_id);
