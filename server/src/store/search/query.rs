//! The query model: what the service asks of the store (types, a tree of filters, sort
//! keys, a keyset position) and what it gets back (rows, keys).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable, Text};

/// The index table of a search parameter type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Token,
    String,
    Date,
    Number,
    Quantity,
    Reference,
    Uri,
}

impl Table {
    pub(super) fn name(self) -> &'static str {
        match self {
            Table::Token => "search_token",
            Table::String => "search_string",
            Table::Date => "search_date",
            Table::Number => "search_number",
            Table::Quantity => "search_quantity",
            Table::Reference => "search_reference",
            Table::Uri => "search_uri",
        }
    }
}

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
    Float(f64),
}

/// How a stored range `[lo, hi]` must relate to the searched bounds (a point `v`, such as
/// a number or an instant, is `[v, v]`). The service turns search prefixes into these
/// (search.html#prefix is its rule, not the store's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RangeTest<T> {
    /// `a <= lo` and `hi <= b`.
    Within(T, T),
    /// `lo < a` or `hi > b`.
    Outside(T, T),
    /// `a <= v < b`, for a point.
    WithinHalfOpen(T, T),
    /// `v < a` or `v >= b`, for a point.
    OutsideHalfOpen(T, T),
    /// `hi >= a` and `lo <= b`.
    Overlaps(T, T),
    /// `hi > x`.
    EndsAfter(T),
    /// `hi >= x`.
    EndsAtOrAfter(T),
    /// `lo < x`.
    StartsBefore(T),
    /// `lo <= x`.
    StartsAtOrBefore(T),
    /// `lo > x`.
    StartsAfter(T),
    /// `hi < x`.
    EndsBefore(T),
}

impl<T> RangeTest<T> {
    /// The same test with the bounds converted.
    pub fn map<U>(self, f: impl Fn(T) -> U) -> RangeTest<U> {
        use RangeTest as R;
        match self {
            R::Within(a, b) => R::Within(f(a), f(b)),
            R::Outside(a, b) => R::Outside(f(a), f(b)),
            R::WithinHalfOpen(a, b) => R::WithinHalfOpen(f(a), f(b)),
            R::OutsideHalfOpen(a, b) => R::OutsideHalfOpen(f(a), f(b)),
            R::Overlaps(a, b) => R::Overlaps(f(a), f(b)),
            R::EndsAfter(x) => R::EndsAfter(f(x)),
            R::EndsAtOrAfter(x) => R::EndsAtOrAfter(f(x)),
            R::StartsBefore(x) => R::StartsBefore(f(x)),
            R::StartsAtOrBefore(x) => R::StartsAtOrBefore(f(x)),
            R::StartsAfter(x) => R::StartsAfter(f(x)),
            R::EndsBefore(x) => R::EndsBefore(f(x)),
        }
    }
}

/// A condition on the rows of one index table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// Any row of the parameter (for `:missing=false`).
    Any,
    /// Token by system and/or code (`None` = any).
    Token {
        system: Option<String>,
        code: Option<String>,
    },
    /// Token that is one of these (system, code) pairs (`:in`, a value set's codes).
    TokenIn(Vec<(String, String)>),
    /// Folded string starts with the (folded) value.
    StringStarts(String),
    /// The string exactly as written (`norm` is its folded form, to use the index).
    StringExact { norm: String, exact: String },
    /// Folded string contains the (folded) value.
    StringContains(String),
    /// The row's range `[lo, hi]` (dates, in ms).
    DateRange(RangeTest<i64>),
    /// The row's value (numbers; quantities with unit).
    Value {
        test: RangeTest<f64>,
        /// Quantity only: the unit system and code, when searched.
        system: Option<String>,
        code: Option<String>,
    },
    /// A local reference: target type (any when `None`) and id.
    Target { types: Vec<String>, id: String },
    /// An absolute or canonical reference.
    Url(String),
    /// URI equal, or (`below`) starting with the value, or (`above`) a prefix of it.
    Uri { value: String, mode: UriMode },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriMode {
    Equal,
    Below,
    Above,
}

/// What resources must satisfy.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// The logical id is one of these.
    Id(Vec<String>),
    /// The resource type is one of these.
    Types(Vec<String>),
    /// `meta.lastUpdated` (a point, in ms).
    LastUpdated(RangeTest<i64>),
    /// Some row of the index table for `param` satisfies `cond`.
    Index {
        table: Table,
        param: String,
        cond: Cond,
    },
    /// Chaining (search.html#chaining): the reference `param` points at a resource of
    /// one of `target_types` that satisfies `filter`.
    Chain {
        param: String,
        target_types: Vec<String>,
        filter: Box<Filter>,
    },
    /// Reverse chaining (search.html#has): some `source_type` resource whose reference
    /// `param` points here satisfies `filter`.
    Has {
        source_type: String,
        param: String,
        filter: Box<Filter>,
    },
    /// A composite over repeating elements (search.html#composite): one element of
    /// composite `param` whose i-th component (rows `<param>#<k>$<i>` of table `parts[i].0`)
    /// satisfies `parts[i].1`, for every i.
    Composite {
        param: String,
        parts: Vec<(Table, Cond)>,
    },
    /// A position (number rows [`NEAR_LATITUDE`], [`NEAR_LONGITUDE`]) inside the box
    /// `latitude` × `longitude` (for the index) and within `limit` of `center` in the plane
    /// where a degree of latitude is `scale.0` and a degree of longitude `scale.1`:
    /// `(scale.0·Δlat)² + (scale.1·Δlon)² <= limit²`. The service chooses the geometry.
    Near {
        latitude: (f64, f64),
        longitude: (f64, f64),
        center: (f64, f64),
        scale: (f64, f64),
        limit: f64,
    },
    /// Contained resources (search.html#contained): the resource contains one of
    /// `types` that satisfies `filter`.
    Contains {
        types: Vec<String>,
        filter: Box<Filter>,
    },
    /// In the compartment of `target_type/<one of target_ids>`
    /// (compartmentdefinition.html): one of the `members` (type, reference parameter)
    /// points at it, or (with `itself`) it is that resource. One lookup of the reverse
    /// reference index, whatever the number of types. No ids: nothing.
    Compartment {
        target_type: String,
        target_ids: Vec<String>,
        members: Vec<(String, String)>,
        itself: bool,
    },
}

/// The token row of a container for each of its contained resources: system = the
/// contained type, code = its index key (service/index: `contained_key`).
pub const CONTAINED_PARAM: &str = "_contained";
/// The token row of a contained resource naming its container: system = type, code = id.
pub const CONTAINER_PARAM: &str = "_container";

/// The number rows of a Location's position (`near`): latitude and longitude, WGS84
/// degrees.
pub const NEAR_LATITUDE: &str = "near$lat";
pub const NEAR_LONGITUDE: &str = "near$lon";

/// The kind of a sort key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Text,
    Int,
    Float,
}

/// One `_sort` key (search.html#sort).
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub source: SortSource,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SortSource {
    Id,
    LastUpdated,
    Index { table: Table, param: String },
}

impl SortKey {
    /// The kind of value this key sorts by.
    pub fn kind(&self) -> KeyKind {
        match &self.source {
            SortSource::Id => KeyKind::Text,
            SortSource::LastUpdated => KeyKind::Int,
            SortSource::Index { table, .. } => match table {
                Table::Date => KeyKind::Int,
                Table::Number | Table::Quantity => KeyKind::Float,
                _ => KeyKind::Text,
            },
        }
    }
}

/// A sort key value of a row (the keyset position).
#[derive(Debug, Clone, PartialEq)]
pub enum KeyValue {
    Text(String),
    Int(i64),
    Float(f64),
}

/// Where a page starts: strictly after (or, paging back, before) this row.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub keys: Vec<KeyValue>,
    pub res_type: String,
    pub res_id: String,
    /// Paging backwards: rows before the position, nearest first.
    pub backwards: bool,
}

impl Position {
    /// Just after `row`, paging forwards by type and id (no sort keys).
    pub fn after(row: &SearchRow) -> Self {
        Self {
            keys: Vec::new(),
            res_type: row.res_type.clone(),
            res_id: row.res_id.clone(),
            backwards: false,
        }
    }
}

/// Most sort keys a search may have.
pub const MAX_SORT_KEYS: usize = 3;

/// A search of current resources.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// The types searched (at least one).
    pub types: Vec<String>,
    pub filter: Filter,
    pub sort: Vec<SortKey>,
    pub position: Option<Position>,
    pub limit: i64,
}

/// A row of a search result.
#[derive(Debug, Clone, QueryableByName)]
pub struct SearchRow {
    #[diesel(sql_type = Text)]
    pub res_type: String,
    #[diesel(sql_type = Text)]
    pub res_id: String,
    #[diesel(sql_type = BigInt)]
    pub version_id: i64,
    #[diesel(sql_type = BigInt)]
    pub last_updated: i64,
    #[diesel(sql_type = Text)]
    pub content: String,
    #[diesel(sql_type = Nullable<Text>)]
    s1: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    s2: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    s3: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    i1: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    i2: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    i3: Option<i64>,
    #[diesel(sql_type = Nullable<Double>)]
    f1: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    f2: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    f3: Option<f64>,
}

impl SearchRow {
    /// The row's sort key values, for the next page's position.
    pub fn keys(&self, sort: &[SortKey]) -> Vec<KeyValue> {
        sort.iter()
            .enumerate()
            .map(|(i, key)| match key.kind() {
                KeyKind::Text => KeyValue::Text(
                    [&self.s1, &self.s2, &self.s3][i]
                        .clone()
                        .unwrap_or_default(),
                ),
                KeyKind::Int => KeyValue::Int([self.i1, self.i2, self.i3][i].unwrap_or_default()),
                KeyKind::Float => {
                    KeyValue::Float([self.f1, self.f2, self.f3][i].unwrap_or_default())
                }
            })
            .collect()
    }
}

/// A (type, id) pair of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, QueryableByName)]
pub struct ResourceKey {
    #[diesel(sql_type = Text)]
    pub res_type: String,
    #[diesel(sql_type = Text)]
    pub res_id: String,
}
