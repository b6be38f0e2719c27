//! Search index rows computed at write time (search.html), from the R4 SearchParameter
//! definitions vendored in `fhir-profiles`: each parameter's FHIRPath expression is
//! evaluated on the resource and what it selects becomes rows of the parameter's type —
//! token, string, date, number, quantity, reference, uri. The rows are written in the
//! write's transaction and replaced on every write, so a search sees exactly the current
//! versions.
//!
//! `_id` and `_lastUpdated` are answered from the versions table itself. Composites over
//! repeating elements have rows per element (`<code>#<k>$<i>`); `_text`, `_content` and
//! Location `near` have rows of their own (below); contained resources are indexed with
//! their container ([`rows`]).

use std::collections::HashMap;
use std::sync::OnceLock;

pub mod date;
pub mod fold;
pub mod text;
pub mod ucum;

use chrono::FixedOffset;
use serde_json::Value;

use super::fhirpath;
use super::search_parameters::Registry;
use crate::store::{
    IndexRows, NewDateRow, NewNumberRow, NewQuantityRow, NewReferenceRow, NewStringRow,
    NewTokenRow, NewUriRow, Table, CONTAINED_PARAM, CONTAINER_PARAM,
};

/// What indexing needs to know about the server.
#[derive(Debug, Clone)]
pub struct IndexContext {
    /// The FHIR base URL: absolute references under it are local.
    pub base_url: String,
    /// The zone of dates and times written without one.
    pub default_offset: FixedOffset,
    /// The search parameters indexed (the standard ones and the store's custom ones).
    pub parameters: Registry,
    /// Whether a write's literal references must name resources of the store
    /// (`HB-REFERENCE-UNKNOWN`, `references.rs`).
    pub check_references: bool,
}

/// Largest instant, the open end of a period.
const OPEN_END: i64 = i64::MAX;
/// Smallest instant, the open start of a period.
const OPEN_START: i64 = i64::MIN;

/// The index rows of `resource` (type `res_type`, id `id`), with those of its contained
/// resources (search.html#contained). A contained resource is indexed as a resource of its
/// own type under the key [`contained_key`] (no logical id holds `/` or `#`, so no search
/// of stored resources meets it), with two rows of its own — `_container` (token: the
/// container's type and id) and `_id` (its local id) — and one row of the container,
/// `_contained` (token: the contained type and key), by which the store replaces its rows
/// with the container's. Local references (`#m1`) point at those keys, so chains go
/// into contained resources.
pub fn rows(ctx: &IndexContext, res_type: &str, id: &str, resource: &Value) -> IndexRows {
    let mut local = Local {
        container: (res_type.to_owned(), id.to_owned()),
        ids: HashMap::new(),
    };
    let mut contained = Vec::new();
    for c in resource
        .get("contained")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(local_id), Some(c_type)) = (str_at(c, "id"), str_at(c, "resourceType")) else {
            continue;
        };
        if !fhir_format::is_resource_type(c_type) || local.ids.contains_key(local_id) {
            continue;
        }
        let key = contained_key(res_type, id, local_id);
        local
            .ids
            .insert(local_id.to_owned(), (c_type.to_owned(), key.clone()));
        contained.push((local_id, c_type, key, c));
    }
    let mut out = resource_rows(ctx, res_type, id, resource, &local);
    let token = |t: &str, key: &str, param: &str, system: &str, code: &str| NewTokenRow {
        res_type: t.to_owned(),
        res_id: key.to_owned(),
        param: param.to_owned(),
        system: system.to_owned(),
        code: code.to_owned(),
    };
    for (local_id, c_type, key, c) in contained {
        out.tokens
            .push(token(res_type, id, CONTAINED_PARAM, c_type, &key));
        let mut inner = resource_rows(ctx, c_type, &key, c, &local);
        inner
            .tokens
            .push(token(c_type, &key, CONTAINER_PARAM, res_type, id));
        inner.tokens.push(token(c_type, &key, "_id", "", local_id));
        out.append(inner);
    }
    out
}

/// The index key of the contained resource `local_id` of `container_type/container_id`.
pub fn contained_key(container_type: &str, container_id: &str, local_id: &str) -> String {
    format!("{container_type}/{container_id}#{local_id}")
}

/// The container's type and id and the local id of a [`contained_key`].
pub fn split_contained_key(key: &str) -> Option<(&str, &str, &str)> {
    let (container, local_id) = key.split_once('#')?;
    let (container_type, container_id) = container.split_once('/')?;
    Some((container_type, container_id, local_id))
}

/// What local references (`#m1`) of a resource and its contained resources point at.
struct Local {
    container: (String, String),
    /// Local id -> (type, index key) of each contained resource.
    ids: HashMap<String, (String, String)>,
}

/// The index rows of one resource, stored or contained.
fn resource_rows(
    ctx: &IndexContext,
    res_type: &str,
    id: &str,
    resource: &Value,
    local: &Local,
) -> IndexRows {
    let mut rows = Rows {
        ctx,
        res_type,
        id,
        local,
        out: IndexRows::default(),
    };
    for (sp, expressions) in indexed_parameters(res_type) {
        for expression in expressions {
            for value in fhirpath::values(resource, expression) {
                rows.add(&sp.code, &sp.kind, expression, value);
            }
        }
    }
    // `_text` and `_content` (search.html#text, #content): one word-list row each.
    let narrative = resource.pointer("/text/div").and_then(Value::as_str);
    if let Some(list) =
        narrative.and_then(|div| text::word_list(&text::words(&text::narrative(div))))
    {
        rows.word_list_row("_text", list);
    }
    if let Some(list) = text::word_list(&text::content(resource)) {
        rows.word_list_row("_content", list);
    }
    // Location `near` (a special parameter, search.html#special): the position's
    // latitude and longitude as number rows `near$lat`, `near$lon`.
    if res_type == "Location" {
        let position = resource.get("position");
        let at = |key: &str| position.and_then(|p| p.get(key)).and_then(Value::as_f64);
        if let (Some(lat), Some(lon)) = (at("latitude"), at("longitude")) {
            rows.number(crate::store::NEAR_LATITUDE, lat);
            rows.number(crate::store::NEAR_LONGITUDE, lon);
        }
    }
    // Custom parameters (SearchParameter resources of the store, checked when written).
    for sp in ctx.parameters.custom_for(res_type) {
        for expression in expressions(&sp, res_type) {
            for value in fhirpath::values(resource, &expression) {
                rows.add(&sp.code, &sp.kind, &expression, value);
            }
        }
    }
    // Composites over repeating elements: the components of the k-th element are indexed
    // as `<code>#<k>$<i>`, so that a search can ask for one element matching every part.
    for composite in grouped_composites(res_type) {
        let mut k = 0;
        for base in &composite.bases {
            let root = base == res_type;
            for element in fhirpath::values(resource, base) {
                // An element is evaluated as a resource of type `Element`; the resource
                // itself (the base of `combo-*`) as it is, without a copy.
                let wrapped = (!root).then(|| {
                    let mut w = element.clone();
                    if let Some(o) = w.as_object_mut() {
                        o.insert("resourceType".into(), Value::String(ELEMENT.into()));
                    }
                    w
                });
                for (i, part) in composite.parts.iter().enumerate() {
                    let param = format!("{}#{k}${i}", composite.sp.code);
                    let (on, expression) = match &wrapped {
                        Some(w) if !part.on_root => (w, &part.on_element),
                        _ => (resource, &part.on_resource),
                    };
                    for value in fhirpath::values(on, expression) {
                        rows.add(&param, &part.sp.kind, expression, value);
                    }
                }
                k += 1;
            }
        }
    }
    rows.finish()
}

/// The type name a composite's element is evaluated under (its components' expressions are
/// relative to the element).
const ELEMENT: &str = "Element";

/// A composite search parameter over repeating elements (search.html#composite), as
/// indexed: the expressions of its elements and, per component, the component's own
/// parameter (for its type) and expression relative to an element.
pub struct GroupedComposite {
    pub sp: &'static fhir_profiles::SearchParameter,
    pub bases: Vec<String>,
    pub parts: Vec<CompositePart>,
}

/// One component of a [`GroupedComposite`]: its own parameter, and its expression on an
/// element (`Element.code`) and on the resource when that is the element
/// (`Observation.code`).
pub struct CompositePart {
    pub sp: &'static fhir_profiles::SearchParameter,
    pub on_element: String,
    pub on_resource: String,
    /// The component is read from the resource for every element (`%resource.x`).
    pub on_root: bool,
}

static GROUPED: OnceLock<HashMap<String, Vec<GroupedComposite>>> = OnceLock::new();

/// The composites of `res_type` over repeating elements this server indexes: those whose
/// expressions the FHIRPath subset evaluates and whose components are of indexed types
/// (composites over the resource itself are searched through their components' rows).
pub fn grouped_composites(res_type: &str) -> &'static [GroupedComposite] {
    let all = GROUPED.get_or_init(|| {
        fhir_format::resource_types()
            .iter()
            .map(|t| {
                let empty = serde_json::json!({ "resourceType": t });
                let element = serde_json::json!({ "resourceType": ELEMENT });
                let composites = fhir_profiles::search_parameters_for(t)
                    .iter()
                    .filter(|sp| sp.kind == "composite")
                    .filter_map(|sp| {
                        let bases = expressions(sp, t);
                        if bases.is_empty()
                            || bases == [(*t).to_owned()]
                            || bases.iter().any(|b| fhirpath::select(&empty, b).is_err())
                        {
                            return None;
                        }
                        let parts = sp
                            .component
                            .iter()
                            .map(|c| {
                                let part = fhir_profiles::search_parameter_by_url(&c.definition)?;
                                let on = |root: &str| {
                                    fhir_profiles::split_union(&c.expression)
                                        .into_iter()
                                        .map(|e| format!("{root}.{e}"))
                                        .collect::<Vec<_>>()
                                        .join(" | ")
                                };
                                // `%resource.x` (MolecularSequence's coordinates): a
                                // component read from the resource for every element.
                                let (on_element, on_resource, on_root) =
                                    match c.expression.strip_prefix("%resource.") {
                                        Some(rest) => {
                                            let path = format!("{t}.{rest}");
                                            (path.clone(), path, true)
                                        }
                                        None => (on(ELEMENT), on(t), false),
                                    };
                                let usable = table_of(part).is_some()
                                    && !on_element.contains('%')
                                    && if on_root {
                                        fhirpath::select(&empty, &on_resource).is_ok()
                                    } else {
                                        fhirpath::select(&element, &on_element).is_ok()
                                    };
                                usable.then_some(CompositePart {
                                    sp: part,
                                    on_element,
                                    on_resource,
                                    on_root,
                                })
                            })
                            .collect::<Option<Vec<_>>>()?;
                        Some(GroupedComposite { sp, bases, parts })
                    })
                    .collect();
                ((*t).to_owned(), composites)
            })
            .collect()
    });
    all.get(res_type).map(Vec::as_slice).unwrap_or_default()
}

/// The index table of a parameter type; `None` for composite and special parameters,
/// which are not indexed.
pub fn table_of(sp: &fhir_profiles::SearchParameter) -> Option<Table> {
    Some(match sp.kind.as_str() {
        "token" => Table::Token,
        "string" => Table::String,
        "date" => Table::Date,
        "number" => Table::Number,
        "quantity" => Table::Quantity,
        "reference" => Table::Reference,
        "uri" => Table::Uri,
        _ => return None,
    })
}

type IndexPlan = Vec<(&'static fhir_profiles::SearchParameter, Vec<String>)>;

static PLANS: OnceLock<HashMap<String, IndexPlan>> = OnceLock::new();

/// The parameters indexed for `res_type` with their expressions, derived once per type:
/// those of an indexed type whose expressions the FHIRPath subset evaluates (`_id` and
/// `_lastUpdated` live in the versions table).
pub fn indexed_parameters(
    res_type: &str,
) -> &'static [(&'static fhir_profiles::SearchParameter, Vec<String>)] {
    let plans = PLANS.get_or_init(|| {
        fhir_format::resource_types()
            .iter()
            .map(|t| {
                let empty = serde_json::json!({ "resourceType": t });
                let plan = fhir_profiles::search_parameters_for(t)
                    .iter()
                    .filter(|sp| {
                        !matches!(sp.code.as_str(), "_id" | "_lastUpdated")
                            && table_of(sp).is_some()
                    })
                    .map(|sp| (*sp, expressions(sp, t)))
                    .filter(|(_, e)| {
                        !e.is_empty() && e.iter().all(|e| fhirpath::select(&empty, e).is_ok())
                    })
                    .collect();
                ((*t).to_owned(), plan)
            })
            .collect()
    });
    plans.get(res_type).map(Vec::as_slice).unwrap_or_default()
}

/// The expressions of `sp` that apply to `res_type`; the common parameters' `Resource.`
/// paths are read as paths of the type itself.
pub fn expressions(sp: &fhir_profiles::SearchParameter, res_type: &str) -> Vec<String> {
    if sp
        .base
        .iter()
        .any(|b| b == "Resource" || b == "DomainResource")
    {
        return sp
            .expression
            .as_deref()
            .map(|e| {
                fhir_profiles::split_union(e)
                    .into_iter()
                    .filter_map(|part| part.strip_prefix("Resource."))
                    .map(|rest| format!("{res_type}.{rest}"))
                    .collect()
            })
            .unwrap_or_default();
    }
    let parts: Vec<String> = sp
        .expressions_for(res_type)
        .into_iter()
        .map(str::to_owned)
        .collect();
    if parts.is_empty() && sp.base == [res_type] {
        // A few R4 expressions leave out the type (InsurancePlan.name: `name | alias`).
        if let Some(expression) = &sp.expression {
            return fhir_profiles::split_union(expression)
                .into_iter()
                .filter(|p| p.starts_with(|c: char| c.is_ascii_lowercase()))
                .map(|p| format!("{res_type}.{p}"))
                .collect();
        }
    }
    parts
}

struct Rows<'a> {
    ctx: &'a IndexContext,
    res_type: &'a str,
    id: &'a str,
    local: &'a Local,
    out: IndexRows,
}

impl Rows<'_> {
    fn add(&mut self, param: &str, kind: &str, expression: &str, value: &Value) {
        match kind {
            "token" => self.token(param, expression, value),
            "string" => self.string(param, value),
            "date" => self.date(param, value),
            "number" => {
                if let Some(v) = value.as_f64() {
                    self.number(param, v);
                }
            }
            "quantity" => self.quantity(param, value),
            "reference" => self.reference(param, value),
            "uri" => {
                if let Some(uri) = value.as_str() {
                    self.uri(param, uri);
                }
            }
            _ => {}
        }
    }

    fn token(&mut self, param: &str, expression: &str, value: &Value) {
        match value {
            Value::String(code) => self.token_row(param, "", code),
            Value::Bool(b) => self.token_row(param, "", if *b { "true" } else { "false" }),
            Value::Object(o) => {
                if o.contains_key("coding") || (o.contains_key("text") && !o.contains_key("value"))
                {
                    // CodeableConcept
                    for coding in o
                        .get("coding")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        self.coding(param, coding);
                    }
                    if let Some(text) = str_at(value, "text") {
                        self.text_row(param, text);
                    }
                } else if expression.contains("telecom") {
                    // ContactPoint: the value is the token (search.html#token)
                    if let Some(v) = str_at(value, "value") {
                        self.token_row(param, "", v);
                    }
                } else if o.contains_key("value") {
                    // Identifier
                    let system = str_at(value, "system").unwrap_or("");
                    if let Some(v) = str_at(value, "value") {
                        self.token_row(param, system, v);
                        for coding in o
                            .get("type")
                            .and_then(|t| t.get("coding"))
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            if let Some(code) = str_at(coding, "code") {
                                let of_type = format!("{param}:of-type");
                                let system = str_at(coding, "system").unwrap_or("");
                                self.token_row(&of_type, system, &format!("{code}|{v}"));
                            }
                        }
                    }
                    if let Some(text) = value.get("type").and_then(|t| str_at(t, "text")) {
                        self.text_row(param, text);
                    }
                } else {
                    self.coding(param, value);
                }
            }
            _ => {}
        }
    }

    fn coding(&mut self, param: &str, coding: &Value) {
        if let Some(code) = str_at(coding, "code") {
            self.token_row(param, str_at(coding, "system").unwrap_or(""), code);
        }
        if let Some(display) = str_at(coding, "display") {
            self.text_row(param, display);
        }
    }

    fn token_row(&mut self, param: &str, system: &str, code: &str) {
        self.out.tokens.push(NewTokenRow {
            res_type: self.res_type.to_owned(),
            res_id: self.id.to_owned(),
            param: param.to_owned(),
            system: system.to_owned(),
            code: code.to_owned(),
        });
    }

    /// A token's display text, for `:text` (search.html#modifiers).
    fn text_row(&mut self, param: &str, text: &str) {
        self.string_row(&format!("{param}:text"), text);
    }

    fn string(&mut self, param: &str, value: &Value) {
        match value {
            Value::String(s) => self.string_row(param, s),
            Value::Object(o) => {
                // HumanName, Address and other complex types: every part is matched
                // (search.html#string), codes such as `use` are not.
                for (key, part) in o {
                    if matches!(key.as_str(), "use" | "type" | "period" | "extension" | "id") {
                        continue;
                    }
                    match part {
                        Value::String(s) => self.string_row(param, s),
                        Value::Array(items) => {
                            for s in items.iter().filter_map(Value::as_str) {
                                self.string_row(param, s);
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    /// The one row of `_text` or `_content`: the folded word list (`text::word_list`).
    fn word_list_row(&mut self, param: &str, list: String) {
        self.out.strings.push(NewStringRow {
            res_type: self.res_type.to_owned(),
            res_id: self.id.to_owned(),
            param: param.to_owned(),
            norm: list,
            exact: String::new(),
        });
    }

    fn string_row(&mut self, param: &str, text: &str) {
        self.out.strings.push(NewStringRow {
            res_type: self.res_type.to_owned(),
            res_id: self.id.to_owned(),
            param: param.to_owned(),
            norm: fold::fold(text),
            exact: text.to_owned(),
        });
    }

    fn date(&mut self, param: &str, value: &Value) {
        let offset = self.ctx.default_offset;
        let at = |v: Option<&str>| v.and_then(|s| date::range(s, offset));
        match value {
            Value::String(s) => {
                if let Some(r) = date::range(s, offset) {
                    self.date_row(param, r.lo, r.hi);
                }
            }
            Value::Object(o) if o.contains_key("start") || o.contains_key("end") => {
                // Period: an absent end is ongoing, an absent start unknown (search.html#date).
                let start = at(str_at(value, "start"));
                let end = at(str_at(value, "end"));
                if start.is_some() || end.is_some() {
                    self.date_row(
                        param,
                        start.map_or(OPEN_START, |r| r.lo),
                        end.map_or(OPEN_END, |r| r.hi),
                    );
                }
            }
            Value::Object(o) => {
                // Timing: its events, or the bounds of its repeat.
                for event in o
                    .get("event")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    self.date(param, event);
                }
                if let Some(bounds) = o.get("repeat").and_then(|r| r.get("boundsPeriod")) {
                    self.date(param, bounds);
                }
            }
            _ => {}
        }
    }

    fn date_row(&mut self, param: &str, lo: i64, hi: i64) {
        self.out.dates.push(NewDateRow {
            res_type: self.res_type.to_owned(),
            res_id: self.id.to_owned(),
            param: param.to_owned(),
            lo,
            hi,
        });
    }

    fn number(&mut self, param: &str, value: f64) {
        self.out.numbers.push(NewNumberRow {
            res_type: self.res_type.to_owned(),
            res_id: self.id.to_owned(),
            param: param.to_owned(),
            value,
        });
    }

    fn quantity(&mut self, param: &str, value: &Value) {
        let Some(number) = value.get("value").and_then(Value::as_f64) else {
            return;
        };
        let system = str_at(value, "system").unwrap_or("");
        let code = str_at(value, "code")
            .or_else(|| str_at(value, "unit"))
            .unwrap_or("");
        self.quantity_row(param, number, system, code);
        if system == ucum::SYSTEM {
            if let Some((canonical, base)) = ucum::canonical(number, code) {
                if base != code {
                    self.quantity_row(param, canonical, ucum::SYSTEM, base);
                }
            }
        }
    }

    fn quantity_row(&mut self, param: &str, value: f64, system: &str, code: &str) {
        self.out.quantities.push(NewQuantityRow {
            res_type: self.res_type.to_owned(),
            res_id: self.id.to_owned(),
            param: param.to_owned(),
            value,
            system: system.to_owned(),
            code: code.to_owned(),
        });
    }

    fn reference(&mut self, param: &str, value: &Value) {
        match value {
            // canonical or uri targets
            Value::String(url) => self.reference_url(param, url),
            Value::Object(_) => {
                if let Some(reference) = str_at(value, "reference") {
                    self.reference_url(param, reference);
                }
                if let Some(identifier) = value.get("identifier") {
                    if let Some(v) = str_at(identifier, "value") {
                        let system = str_at(identifier, "system").unwrap_or("");
                        self.token_row(&format!("{param}:identifier"), system, v);
                    }
                }
            }
            _ => {}
        }
    }

    fn reference_url(&mut self, param: &str, reference: &str) {
        if let Some(local_id) = reference.strip_prefix('#') {
            // A contained resource, or (`#` alone) the container (references.html#contained).
            let target = if local_id.is_empty() {
                Some(&self.local.container)
            } else {
                self.local.ids.get(local_id)
            };
            if let Some((target_type, key)) = target {
                self.out.references.push(NewReferenceRow {
                    res_type: self.res_type.to_owned(),
                    res_id: self.id.to_owned(),
                    param: param.to_owned(),
                    target_type: target_type.clone(),
                    target_id: key.clone(),
                    url: String::new(),
                });
            }
            return;
        }
        let base = self.ctx.base_url.trim_end_matches('/');
        let local = reference
            .strip_prefix(base)
            .and_then(|rest| rest.strip_prefix('/'))
            .or_else(|| (!reference.contains(':')).then_some(reference));
        let target = local.and_then(fhirpath::reference_target);
        let (target_type, target_id, url) = match target {
            Some((t, id)) => (t, id, ""),
            None => ("", "", reference),
        };
        self.out.references.push(NewReferenceRow {
            res_type: self.res_type.to_owned(),
            res_id: self.id.to_owned(),
            param: param.to_owned(),
            target_type: target_type.to_owned(),
            target_id: target_id.to_owned(),
            url: url.to_owned(),
        });
    }

    fn uri(&mut self, param: &str, uri: &str) {
        self.out.uris.push(NewUriRow {
            res_type: self.res_type.to_owned(),
            res_id: self.id.to_owned(),
            param: param.to_owned(),
            uri: uri.to_owned(),
        });
    }

    /// Sorted and without duplicates, so a resource's rows are the same however its
    /// elements are ordered.
    fn finish(mut self) -> IndexRows {
        let out = &mut self.out;
        out.tokens
            .sort_by(|a, b| (&a.param, &a.system, &a.code).cmp(&(&b.param, &b.system, &b.code)));
        out.tokens.dedup();
        out.strings
            .sort_by(|a, b| (&a.param, &a.norm, &a.exact).cmp(&(&b.param, &b.norm, &b.exact)));
        out.strings.dedup();
        out.dates.sort_by_key(|r| (r.param.clone(), r.lo, r.hi));
        out.dates.dedup();
        out.numbers
            .sort_by(|a, b| a.param.cmp(&b.param).then(a.value.total_cmp(&b.value)));
        out.numbers.dedup();
        out.quantities.sort_by(|a, b| {
            (&a.param, &a.system, &a.code)
                .cmp(&(&b.param, &b.system, &b.code))
                .then(a.value.total_cmp(&b.value))
        });
        out.quantities.dedup();
        out.references.sort_by(|a, b| {
            (&a.param, &a.target_type, &a.target_id, &a.url).cmp(&(
                &b.param,
                &b.target_type,
                &b.target_id,
                &b.url,
            ))
        });
        out.references.dedup();
        out.uris
            .sort_by(|a, b| (&a.param, &a.uri).cmp(&(&b.param, &b.uri)));
        out.uris.dedup();
        self.out
    }
}

fn str_at<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

/// The values of a resource's `identifier` elements (single or repeating).
pub fn identifier_values(resource: &Value) -> Vec<&str> {
    let identifiers: Vec<&Value> = match resource.get("identifier") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => Vec::new(),
    };
    identifiers
        .into_iter()
        .filter_map(|identifier| str_at(identifier, "value"))
        .collect()
}

/// The lock key writers take for an identifier value of a type, so that a conditional
/// create testing `identifier=[system|]code` and any write adding that identifier are
/// serialised. The system is left out so that criteria with and without it meet.
pub fn identifier_lock_key(res_type: &str, code: &str) -> i64 {
    lock_key(&["identifier", res_type, code])
}

/// The lock key every write of (type, id) takes, so that concurrent writes of one
/// resource queue instead of racing for the next version number.
pub fn resource_lock_key(res_type: &str, id: &str) -> i64 {
    lock_key(&["resource", res_type, id])
}

pub fn lock_key(parts: &[&str]) -> i64 {
    // FNV-1a: stable across processes and machines, unlike std's randomised hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|p| p.bytes().chain([0x1f])) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> IndexContext {
        IndexContext {
            base_url: "https://hb.example/fhir".to_owned(),
            default_offset: FixedOffset::east_opt(7 * 3600).unwrap(),
            parameters: Registry::default(),
            check_references: true,
        }
    }

    #[test]
    fn patient_rows_cover_every_parameter_type() {
        let patient = json!({
            "resourceType": "Patient", "id": "p1",
            "identifier": [{"system": "https://cccd.gov.vn", "value": "001190000001",
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI"}]}}],
            "name": [{"use": "official", "family": "Nguyễn", "given": ["Văn", "An"]}],
            "telecom": [{"system": "phone", "value": "+84901234567", "use": "mobile"}],
            "gender": "male", "birthDate": "1990-05-17",
            "generalPractitioner": [{"reference": "https://hb.example/fhir/Practitioner/dr1"}],
            "managingOrganization": {"reference": "Organization/o1", "identifier": {"system": "s", "value": "ORG"}},
            "meta": {"tag": [{"system": "t", "code": "x"}], "profile": ["http://p/x"]}
        });
        let rows = rows(&ctx(), "Patient", "p1", &patient);
        let token = |param: &str, system: &str, code: &str| {
            rows.tokens
                .iter()
                .any(|t| t.param == param && t.system == system && t.code == code)
        };
        assert!(token("identifier", "https://cccd.gov.vn", "001190000001"));
        assert!(token(
            "identifier:of-type",
            "http://terminology.hl7.org/CodeSystem/v2-0203",
            "NI|001190000001"
        ));
        assert!(token("phone", "", "+84901234567"));
        assert!(token("telecom", "", "+84901234567"));
        assert!(token("gender", "", "male"));
        assert!(token("_tag", "t", "x"));
        assert!(token("organization:identifier", "s", "ORG"));
        assert!(rows
            .strings
            .iter()
            .any(|s| s.param == "family" && s.norm == "nguyen" && s.exact == "Nguyễn"));
        assert!(rows
            .strings
            .iter()
            .any(|s| s.param == "name" && s.norm == "an"));
        assert!(!rows
            .strings
            .iter()
            .any(|s| s.param == "name" && s.norm == "official"));
        let birth = rows.dates.iter().find(|d| d.param == "birthdate").unwrap();
        assert_eq!(birth.hi - birth.lo + 1, 86_400_000);
        assert!(rows
            .references
            .iter()
            .any(|r| r.param == "general-practitioner"
                && r.target_type == "Practitioner"
                && r.target_id == "dr1"));
        assert!(rows
            .references
            .iter()
            .any(|r| r.param == "organization" && r.target_id == "o1"));
        assert!(rows
            .uris
            .iter()
            .any(|u| u.param == "_profile" && u.uri == "http://p/x"));
    }

    #[test]
    fn observation_quantities_and_codes() {
        let obs = json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}], "text": "Cân nặng"},
            "subject": {"reference": "Patient/p1"},
            "effectivePeriod": {"start": "2021-08-01"},
            "valueQuantity": {"value": 70.5, "system": "http://unitsofmeasure.org", "code": "kg"}
        });
        let rows = rows(&ctx(), "Observation", "o1", &obs);
        assert!(rows
            .tokens
            .iter()
            .any(|t| t.param == "code" && t.code == "29463-7"));
        assert!(rows
            .strings
            .iter()
            .any(|s| s.param == "code:text" && s.norm == "can nang"));
        assert!(rows
            .strings
            .iter()
            .any(|s| s.param == "code:text" && s.norm == "body weight"));
        assert!(rows
            .quantities
            .iter()
            .any(|q| q.param == "value-quantity" && q.code == "kg" && q.value == 70.5));
        assert!(rows
            .quantities
            .iter()
            .any(|q| q.param == "value-quantity" && q.code == "g" && q.value == 70_500.0));
        let date = rows.dates.iter().find(|d| d.param == "date").unwrap();
        assert_eq!(date.hi, OPEN_END);
        assert!(rows
            .references
            .iter()
            .any(|r| r.param == "subject" && r.target_type == "Patient"));
        assert!(rows
            .references
            .iter()
            .any(|r| r.param == "patient" && r.target_id == "p1"));
    }

    /// search.html#contained: a contained resource's rows are its type's, under its
    /// contained key; the container holds a `_contained` row per contained resource; the
    /// contained one a `_container` and an `_id` row; local references point at the key.
    #[test]
    fn contained_resources_are_indexed_under_their_keys() {
        let request = json!({
            "resourceType": "MedicationRequest", "id": "r1", "status": "active",
            "intent": "order",
            "contained": [
                {"resourceType": "Medication", "id": "m1",
                 "code": {"coding": [{"system": "s", "code": "aspirin"}]}},
                {"resourceType": "Practitioner", "id": "dr", "name": [{"family": "Lê"}]}
            ],
            "medicationReference": {"reference": "#m1"},
            "requester": {"reference": "#dr"},
            "subject": {"reference": "Patient/p1"}
        });
        let rows = rows(&ctx(), "MedicationRequest", "r1", &request);
        let key = contained_key("MedicationRequest", "r1", "m1");
        assert_eq!(key, "MedicationRequest/r1#m1");
        assert_eq!(
            split_contained_key(&key),
            Some(("MedicationRequest", "r1", "m1"))
        );
        let token = |res_type: &str, id: &str, param: &str, system: &str, code: &str| {
            rows.tokens.iter().any(|t| {
                t.res_type == res_type
                    && t.res_id == id
                    && t.param == param
                    && t.system == system
                    && t.code == code
            })
        };
        assert!(token("Medication", &key, "code", "s", "aspirin"));
        assert!(token(
            "Medication",
            &key,
            CONTAINER_PARAM,
            "MedicationRequest",
            "r1"
        ));
        assert!(token("Medication", &key, "_id", "", "m1"));
        assert!(token(
            "MedicationRequest",
            "r1",
            CONTAINED_PARAM,
            "Medication",
            &key
        ));
        assert!(rows.strings.iter().any(|r| r.res_type == "Practitioner"
            && r.res_id == "MedicationRequest/r1#dr"
            && r.param == "family"
            && r.norm == "le"));
        let reference = |param: &str| {
            rows.references
                .iter()
                .find(|r| r.res_id == "r1" && r.param == param)
                .map(|r| (r.target_type.as_str(), r.target_id.as_str()))
        };
        assert_eq!(reference("medication"), Some(("Medication", key.as_str())));
        assert_eq!(
            reference("requester"),
            Some(("Practitioner", "MedicationRequest/r1#dr"))
        );
        assert_eq!(reference("subject"), Some(("Patient", "p1")));
        // The container's own rows are not the contained one's.
        assert!(!token("MedicationRequest", "r1", "code", "s", "aspirin"));
    }
}
