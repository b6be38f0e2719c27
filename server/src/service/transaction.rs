//! Transaction — https://hl7.org/fhir/R4/http.html#transaction, http.html#trules
//!
//! All the writes of a transaction Bundle happen in one database transaction, or none
//! does: any failing entry fails the whole Bundle with an OperationOutcome that names the
//! entry (`Bundle.entry[i]`), and nothing is written.
//!
//! Processing follows http.html#trules:
//! 1. Every entry is checked before any work: its request, its body, the token's scope.
//! 2. In the database transaction, the locks of every conditional criterion, identifier and
//!    resource the Bundle touches are taken in one fixed order, so that a site resending
//!    the same Bundle on two connections at once queues behind itself: the second copy
//!    finds what the first created and creates nothing twice.
//! 3. DELETEs (plain and conditional) are processed first, so that what follows sees
//!    them; then identities are resolved: conditional updates find their resource,
//!    conditional creates (`ifNoneExist`) find theirs or get a new id, plain creates get a
//!    new id. Two entries that touch the same resource are a 400 (http.html#trules: "If
//!    any resource identities ... overlap ... the transaction SHALL fail").
//! 4. Every `fullUrl` (`urn:uuid:`, `urn:oid:` or absolute) of a created or updated
//!    resource, and every conditional reference (`Patient?identifier=...`: exactly one
//!    match, else 404 or 412), is replaced by the resource's `[type]/[id]` wherever the
//!    Bundle's resources use it: in references, in uri-typed elements and extensions, and
//!    in `href`/`src` attributes of narratives (http.html#transaction: "Servers SHALL
//!    replace all matching links in the bundle"). A `urn:` reference that names no entry
//!    is a 400.
//! 5. POST, then PUT and PATCH entries are processed; each with the same checks as alone
//!    (`ifMatch`, access to the existing and the new content). New resources, by POST or
//!    by a PUT to an id that never existed (update as create), are written together.
//! 6. GET and HEAD entries are answered after the commit, so they see its writes.

use crate::service::ErrorCode;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use super::create::{check_create, identifier_keys, lock_all, matched, new_version};
use super::delete::{check_delete, delete_target, remove};
use super::entry::{self, Entry, EntryOutcome, EntryResult, Method, Target};
use super::index::{resource_lock_key, IndexContext};
use super::patch::{apply_patch, check_patch};
use super::update::{check_conditional_update, check_update, conditional_target, put, writable};
use super::validate::{Issue, Validator};
use super::{
    ensure_id, outside_compartment, Access, Criteria, Patch, Service, ServiceError, StoredResource,
    Written,
};
use crate::auth::Permission;
use crate::store::{IndexRows, NewResourceVersion, ResourceKey, Tx};

/// What a write entry does, checked before the transaction starts.
#[derive(Debug, Clone)]
enum Write {
    Create { criteria: Option<Criteria> },
    Update { id: String },
    ConditionalUpdate { criteria: Criteria },
    Patch { id: String, patch: Patch },
    Delete { id: String },
    ConditionalDelete { criteria: Criteria },
}

impl Write {
    /// The processing rank of http.html#trules: DELETE, POST, then PUT and PATCH.
    fn rank(&self) -> u8 {
        match self {
            Write::Delete { .. } | Write::ConditionalDelete { .. } => 0,
            Write::Create { .. } => 1,
            _ => 2,
        }
    }
}

/// A write entry, what it does, and the validation warnings of its content.
#[derive(Debug, Clone)]
struct Planned {
    entry: Entry,
    write: Write,
    issues: Vec<Issue>,
}

/// The resource a write entry turned out to touch.
enum Identity {
    /// A create's new id.
    New(String),
    /// The resource a conditional create found: nothing is written.
    Found(StoredResource),
    /// An update, patch or delete of this id.
    Existing(String),
    /// A conditional delete that matched nothing.
    Nothing,
}

/// A conditional reference (`Patient?identifier=...`) found in a Bundle's resources.
#[derive(Debug, Clone)]
struct ConditionalReference {
    text: String,
    criteria: Criteria,
    /// The entry it was found in.
    index: usize,
}

impl Service {
    /// Processes a transaction Bundle; one outcome per entry, in order. The writes are
    /// all made or none is; the reads (answered after the commit) have outcomes of their
    /// own.
    ///
    /// # Errors
    /// The first failing write entry's error, as [`ServiceError::InEntry`]; nothing is
    /// written then.
    pub async fn transaction(
        &self,
        access: &Access,
        bundle: &Value,
    ) -> Result<Vec<EntryResult>, ServiceError> {
        let entries = entry::entries(bundle, self.base_url())?;
        let mut full_urls = HashSet::new();
        for e in &entries {
            if let Some(url) = &e.full_url {
                if !full_urls.insert(url.as_str()) {
                    return Err(ServiceError::at(
                        ErrorCode::BundleDuplicate,
                        format!("Bundle.entry[{}].fullUrl", e.index),
                        "Two entries have the same fullUrl.",
                    ));
                }
            }
        }
        let mut writes = Vec::new();
        let mut reads = Vec::new();
        for e in entries {
            if e.method.is_read() {
                reads.push(e);
            } else {
                let write = self.plan_write(access, &e).map_err(|err| e.failed(err))?;
                let issues = match (&write, &e.resource) {
                    (Write::Patch { .. }, _) | (_, None) => Vec::new(),
                    (_, Some(body)) => self.validated(body).await.map_err(|err| e.failed(err))?,
                };
                writes.push(Planned {
                    entry: e,
                    write,
                    issues,
                });
            }
        }
        let references = self.conditional_references(&writes)?;
        let mut results: Vec<(usize, EntryResult)> = Vec::new();
        if !writes.is_empty() {
            let ctx = Arc::clone(&self.index);
            let validator = Arc::clone(&self.validator);
            let writer = access.clone();
            let planned = writes.clone();
            let written = self
                .write_tx(move |tx| {
                    let ctx = (ctx.as_ref(), validator.as_ref());
                    run(tx, ctx, &writer, planned.clone(), &references)
                })
                .await?;
            for (w, outcome) in writes.iter().zip(written) {
                results.push((w.entry.index, EntryResult::of(&w.entry, Ok(outcome))));
            }
        }
        for e in reads {
            let result = self.entry(access, e.clone()).await;
            results.push((e.index, EntryResult::of(&e, result)));
        }
        results.sort_by_key(|(index, _)| *index);
        Ok(results.into_iter().map(|(_, r)| r).collect())
    }

    /// The checks of a write entry that need no database: the same as the request alone.
    fn plan_write(&self, access: &Access, e: &Entry) -> Result<Write, ServiceError> {
        let criteria =
            |query: &str| Criteria::parse(&self.parse_context(), e.target.res_type(), query);
        Ok(match (e.method, &e.target) {
            (Method::Post, Target::Type { res_type, .. }) => {
                check_create(access, res_type, e.body()?)?;
                Write::Create {
                    criteria: e.if_none_exist.as_deref().map(criteria).transpose()?,
                }
            }
            (Method::Put, Target::Instance { res_type, id }) => {
                check_update(access, res_type, id, e.body()?)?;
                Write::Update { id: id.clone() }
            }
            (
                Method::Put,
                Target::Type {
                    res_type,
                    query: Some(query),
                },
            ) => {
                check_conditional_update(access, res_type, e.body()?)?;
                Write::ConditionalUpdate {
                    criteria: criteria(query)?,
                }
            }
            (Method::Patch, Target::Instance { res_type, id }) => {
                check_patch(access, res_type, id)?;
                Write::Patch {
                    id: id.clone(),
                    patch: e.patch()?,
                }
            }
            (Method::Delete, Target::Instance { res_type, id }) => {
                check_delete(access, res_type)?;
                ensure_id(id)?;
                Write::Delete { id: id.clone() }
            }
            (
                Method::Delete,
                Target::Type {
                    res_type,
                    query: Some(query),
                },
            ) => {
                check_delete(access, res_type)?;
                Write::ConditionalDelete {
                    criteria: criteria(query)?,
                }
            }
            _ => {
                return Err(ServiceError::at(
                    ErrorCode::BundleEntry,
                    format!("Bundle.entry[{}].request", e.index),
                    "This method does not take this kind of url in a bundle.",
                ))
            }
        })
    }

    /// Every conditional reference in the written resources, with its criteria parsed
    /// (strictly, as every conditional criterion is).
    fn conditional_references(
        &self,
        writes: &[Planned],
    ) -> Result<Vec<ConditionalReference>, ServiceError> {
        let mut found: Vec<ConditionalReference> = Vec::new();
        for w in writes {
            let Some(resource) = &w.entry.resource else {
                continue;
            };
            if matches!(w.write, Write::Patch { .. }) {
                continue;
            }
            let mut texts = Vec::new();
            collect_references(resource, &mut texts);
            for text in texts {
                if found.iter().any(|r| r.text == text) {
                    continue;
                }
                let Some((res_type, query)) = conditional(&text, self.base_url()) else {
                    continue;
                };
                let criteria = Criteria::parse(&self.parse_context(), res_type, query)
                    .map_err(|err| w.entry.failed(err))?;
                found.push(ConditionalReference {
                    text,
                    criteria,
                    index: w.entry.index,
                });
            }
        }
        Ok(found)
    }
}

/// The transaction itself, in one database transaction (re-run from the start when the
/// store retries a lost race).
fn run(
    tx: &mut Tx<'_>,
    (ctx, validator): (&IndexContext, &Validator),
    access: &Access,
    mut writes: Vec<Planned>,
    references: &[ConditionalReference],
) -> Result<Vec<EntryOutcome>, ServiceError> {
    lock_all(tx, lock_keys(&writes))?;
    let mut outcomes: Vec<Option<EntryOutcome>> = vec![None; writes.len()];
    let mut identities: Vec<Option<Identity>> = (0..writes.len()).map(|_| None).collect();
    let mut touched: HashMap<(String, String), usize> = HashMap::new();
    // Deletes first (http.html#trules), so that the conditional creates and updates that
    // follow see the Bundle's deletions; then the other identities. No resource may be
    // touched twice.
    for deletes in [true, false] {
        for (i, w) in writes.iter().enumerate() {
            if (w.write.rank() == 0) != deletes {
                continue;
            }
            let identity = identity(tx, access, w).map_err(|err| w.entry.failed(err))?;
            let id = match &identity {
                Identity::New(id) | Identity::Existing(id) => Some(id.clone()),
                Identity::Found(existing) => Some(existing.id.clone()),
                Identity::Nothing => None,
            };
            if let Some(id) = id {
                let key = (w.entry.target.res_type().to_owned(), id);
                if let Some(first) = touched.insert(key, w.entry.index) {
                    return Err(w.entry.failed(ServiceError::new(
                        ErrorCode::BundleDuplicate,
                        format!(
                            "Bundle.entry[{first}] and this entry touch the same resource; a \
                         transaction may touch a resource once."
                        ),
                    )));
                }
            }
            if deletes {
                let outcome = apply(tx, (ctx, validator), access, w, &identity)
                    .map_err(|err| w.entry.failed(err))?;
                outcomes[i] = Some(outcome);
            }
            identities[i] = Some(identity);
        }
    }

    // fullUrls and conditional references to `[type]/[id]`.
    let mut links: HashMap<String, String> = HashMap::new();
    for (w, identity) in writes.iter().zip(&identities) {
        let id = match identity {
            Some(Identity::New(id) | Identity::Existing(id)) if w.write.rank() > 0 => id,
            Some(Identity::Found(existing)) => &existing.id,
            _ => continue,
        };
        let reference = format!("{}/{id}", w.entry.target.res_type());
        if let Some(url) = &w.entry.full_url {
            if *url != format!("{}/{reference}", ctx.base_url) {
                links.insert(url.clone(), reference);
            }
        }
    }
    for r in references {
        let found = r.criteria.matches(tx, access)?;
        let failed = |err| ServiceError::InEntry {
            index: r.index,
            request: "conditional reference".into(),
            source: Box::new(err),
        };
        match found.as_slice() {
            [id] => {
                links.insert(r.text.clone(), format!("{}/{id}", r.criteria.res_type()));
            }
            [] => {
                return Err(failed(ServiceError::not_found(format!(
                    "A conditional reference to {} matches no resource.",
                    r.criteria.res_type()
                ))))
            }
            several => {
                return Err(failed(ServiceError::new(
                    ErrorCode::MultipleMatches,
                    format!(
                        "A conditional reference to {} matches {} resources; it must match one.",
                        r.criteria.res_type(),
                        several.len()
                    ),
                )))
            }
        }
    }
    for w in &mut writes {
        if let (Some(resource), false) = (
            &mut w.entry.resource,
            matches!(w.write, Write::Patch { .. }),
        ) {
            rewrite(resource, &links);
            if let Some(dangling) = unresolved(resource) {
                return Err(w.entry.failed(ServiceError::new(
                    ErrorCode::BundleReference,
                    format!(
                        "The reference {dangling} is not the fullUrl of any entry of this Bundle."
                    ),
                )));
            }
        }
    }

    // Then the creates, then the updates and patches (http.html#trules). New resources
    // are written together, a few statements for many entries.
    let new_by_put = never_written(tx, &writes)?;
    // A practitioner who registers a person here reaches their record in the rest of the
    // Bundle (the visit's Immunizations) and after it (qr/grant.rs).
    let registered: Vec<String> = writes
        .iter()
        .zip(&identities)
        .filter_map(|(w, identity)| match identity {
            Some(Identity::New(id)) if res_type_of(w) == "Patient" => Some(id.clone()),
            _ => None,
        })
        .collect();
    let granted = super::qr::grant::with_patients(access, &registered);
    let access = &granted;
    for id in &registered {
        super::qr::grant::register(tx, ctx, access, id)?;
    }
    let mut created = Created::default();
    for rank in [1, 2] {
        for (i, w) in writes.iter().enumerate() {
            if w.write.rank() != rank {
                continue;
            }
            let Some(identity) = &identities[i] else {
                return Err(ServiceError::Fault(
                    "a write entry without its identity".into(),
                ));
            };
            let outcome = match identity {
                Identity::New(id) => created.add(tx, ctx, access, w, id),
                Identity::Existing(id) if new_by_put.contains(&(res_type_of(w), id.clone())) => {
                    created.add(tx, ctx, access, w, id)
                }
                _ => apply(tx, (ctx, validator), access, w, identity),
            }
            .map_err(|err| w.entry.failed(err))?;
            outcomes[i] = Some(outcome);
            if created.versions.len() >= Created::CHUNK {
                created.flush(tx)?;
            }
        }
        created.flush(tx)?;
    }
    Ok(outcomes.into_iter().flatten().collect())
}

/// New resources of a transaction, written together.
#[derive(Default)]
struct Created {
    versions: Vec<NewResourceVersion>,
    rows: IndexRows,
}

impl Created {
    /// Resources written per statement at most (bind parameter limits of the backends).
    const CHUNK: usize = 100;

    /// Version 1 of a create entry's resource, or of an update entry's to an id that never
    /// existed, to be written at the next flush.
    fn add(
        &mut self,
        tx: &mut Tx<'_>,
        ctx: &IndexContext,
        access: &Access,
        w: &Planned,
        id: &str,
    ) -> Result<EntryOutcome, ServiceError> {
        let resource = w.entry.body()?;
        let method = if let Write::Update { .. } = w.write {
            writable(access, resource)?;
            "PUT"
        } else if access.permits(Permission::Create, resource) {
            "POST"
        } else {
            return Err(access.refusal(Permission::Create, resource, outside_compartment()));
        };
        let at = (w.entry.target.res_type(), id, 1);
        let (version, rows, stored) = new_version(ctx, at, method, resource);
        super::references::require(tx, ctx, w.entry.target.res_type(), resource);
        self.versions.push(version);
        self.rows.append(rows);
        Ok(EntryOutcome::Written(Written {
            resource: stored,
            created: true,
            issues: w.issues.clone(),
        }))
    }

    fn flush(&mut self, tx: &mut Tx<'_>) -> Result<(), ServiceError> {
        tx.insert_many(&std::mem::take(&mut self.versions))?;
        tx.insert_index(&std::mem::take(&mut self.rows))?;
        Ok(())
    }
}

/// The targets of plain update entries (without `ifMatch`) that have never existed, in
/// one query: they are created together with the POSTs (update as create, http.html#upsert).
fn never_written(
    tx: &mut Tx<'_>,
    writes: &[Planned],
) -> Result<HashSet<(String, String)>, ServiceError> {
    let keys: Vec<ResourceKey> = writes
        .iter()
        .filter_map(|w| match &w.write {
            Write::Update { id } if w.entry.if_match.is_none() => Some(ResourceKey {
                res_type: res_type_of(w),
                res_id: id.clone(),
            }),
            _ => None,
        })
        .collect();
    let mut absent: HashSet<(String, String)> = HashSet::new();
    for chunk in keys.chunks(Created::CHUNK) {
        let existing: HashSet<(String, String)> = tx
            .existing(chunk)?
            .into_iter()
            .map(|k| (k.res_type, k.res_id))
            .collect();
        absent.extend(
            chunk
                .iter()
                .map(|k| (k.res_type.clone(), k.res_id.clone()))
                .filter(|k| !existing.contains(k)),
        );
    }
    Ok(absent)
}

fn res_type_of(w: &Planned) -> String {
    w.entry.target.res_type().to_owned()
}

/// Every lock the Bundle's writes need that is known before any read.
fn lock_keys(writes: &[Planned]) -> Vec<i64> {
    let mut keys = Vec::new();
    for w in writes {
        let res_type = w.entry.target.res_type();
        let identifiers = || {
            w.entry
                .resource
                .as_ref()
                .map(|r| identifier_keys(res_type, r))
                .unwrap_or_default()
        };
        match &w.write {
            Write::Create { criteria } => {
                keys.extend(criteria.iter().flat_map(Criteria::lock_keys));
                keys.extend(identifiers());
            }
            Write::Update { id } => {
                keys.extend(identifiers());
                keys.push(resource_lock_key(res_type, id));
            }
            Write::ConditionalUpdate { criteria } => {
                keys.extend(criteria.lock_keys());
                keys.extend(identifiers());
            }
            Write::Patch { id, .. } | Write::Delete { id } => {
                keys.push(resource_lock_key(res_type, id));
            }
            Write::ConditionalDelete { criteria } => keys.extend(criteria.lock_keys()),
        }
    }
    keys
}

/// The resource a write entry touches.
fn identity(tx: &mut Tx<'_>, access: &Access, w: &Planned) -> Result<Identity, ServiceError> {
    let res_type = w.entry.target.res_type();
    Ok(match &w.write {
        Write::Create { criteria } => {
            match criteria
                .as_ref()
                .map(|c| matched(tx, access, c))
                .transpose()?
                .flatten()
            {
                Some(existing) => Identity::Found(existing),
                None => Identity::New(uuid::Uuid::new_v4().to_string()),
            }
        }
        Write::Update { id } | Write::Patch { id, .. } | Write::Delete { id } => {
            Identity::Existing(id.clone())
        }
        Write::ConditionalUpdate { criteria } => {
            let body_id = w
                .entry
                .resource
                .as_ref()
                .and_then(|r| r.get("id"))
                .and_then(Value::as_str);
            let id = conditional_target(res_type, &criteria.matches(tx, access)?, body_id)?;
            tx.lock(resource_lock_key(res_type, &id))?;
            Identity::Existing(id)
        }
        Write::ConditionalDelete { criteria } => {
            match delete_target(&criteria.matches(tx, access)?)? {
                Some(id) => {
                    tx.lock(resource_lock_key(res_type, &id))?;
                    Identity::Existing(id)
                }
                None => Identity::Nothing,
            }
        }
    })
}

/// Performs one write entry.
fn apply(
    tx: &mut Tx<'_>,
    (ctx, validator): (&IndexContext, &Validator),
    access: &Access,
    w: &Planned,
    identity: &Identity,
) -> Result<EntryOutcome, ServiceError> {
    let res_type = w.entry.target.res_type();
    let if_match = w.entry.if_match;
    Ok(match (&w.write, identity) {
        (_, Identity::Nothing) => EntryOutcome::Deleted(None),
        (Write::Create { .. }, Identity::Found(existing)) => EntryOutcome::Written(Written {
            resource: existing.clone(),
            created: false,
            issues: Vec::new(),
        }),
        (Write::Update { .. } | Write::ConditionalUpdate { .. }, Identity::Existing(id)) => {
            let resource = w.entry.body()?;
            writable(access, resource)?;
            let mut written = put(tx, ctx, access, (res_type, id), resource, if_match, "PUT")?;
            written.issues = w.issues.clone();
            EntryOutcome::Written(written)
        }
        (Write::Patch { patch, .. }, Identity::Existing(id)) => EntryOutcome::Written(apply_patch(
            tx,
            (ctx, validator),
            access,
            (res_type, id),
            patch,
            if_match,
        )?),
        (Write::Delete { .. } | Write::ConditionalDelete { .. }, Identity::Existing(id)) => {
            EntryOutcome::Deleted(remove(tx, &ctx.parameters, access, res_type, id)?)
        }
        _ => {
            return Err(ServiceError::Fault(
                "a write entry without its identity".into(),
            ))
        }
    })
}

/// `[type]` and query of a conditional reference (`Patient?identifier=...`, relative or
/// under `base_url`); `None` for any other reference.
fn conditional<'a>(reference: &'a str, base_url: &str) -> Option<(&'a str, &'a str)> {
    let (path, query) = reference.split_once('?')?;
    let res_type = match path.strip_prefix(base_url) {
        Some(rest) => rest.strip_prefix('/')?,
        None if path.contains(':') => return None,
        None => path,
    };
    fhir_format::is_resource_type(res_type).then_some((res_type, query))
}

/// Every `reference` string in `value`.
fn collect_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match v {
                    Value::String(s) if key == "reference" => out.push(s.clone()),
                    _ => collect_references(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

/// Replaces every link in `links` (fullUrl or conditional reference → `[type]/[id]`):
/// whole string values (references, uri-typed elements, extension values) and the `href`
/// and `src` attributes of narratives. An Identifier's (or ContactPoint's) `value` is a
/// string, not a link, and stays as it is.
fn rewrite(value: &mut Value, links: &HashMap<String, String>) {
    if links.is_empty() {
        return;
    }
    match value {
        Value::Object(map) => {
            let identifier_like = map.contains_key("system");
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(s) if key == "div" => *s = rewrite_narrative(s, links),
                    Value::String(_) if identifier_like && key == "value" => {}
                    _ => rewrite(v, links),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite(v, links)),
        Value::String(s) => {
            if let Some(to) = links.get(s.as_str()) {
                *s = to.clone();
            }
        }
        _ => {}
    }
}

/// The narrative with its `href="..."` and `src="..."` links replaced.
fn rewrite_narrative(div: &str, links: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(div.len());
    let mut rest = div;
    while let Some(at) = rest.find(['h', 's']) {
        let (before, tail) = rest.split_at(at);
        out.push_str(before);
        let attribute = ["href=\"", "src=\""]
            .into_iter()
            .find(|a| tail.starts_with(a));
        match attribute {
            Some(a) => {
                out.push_str(a);
                let value_start = &tail[a.len()..];
                let end = value_start.find('"').unwrap_or(value_start.len());
                let link = &value_start[..end];
                out.push_str(links.get(link).map_or(link, String::as_str));
                rest = &value_start[end..];
            }
            None => {
                let c = tail.chars().next().map_or(1, char::len_utf8);
                out.push_str(&tail[..c]);
                rest = &tail[c..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A `urn:uuid:` or `urn:oid:` reference left after rewriting (it names no entry).
pub(super) fn unresolved(value: &Value) -> Option<String> {
    let mut references = Vec::new();
    collect_references(value, &mut references);
    references
        .into_iter()
        .find(|r| r.starts_with("urn:uuid:") || r.starts_with("urn:oid:"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn links_are_replaced_in_references_uris_and_narratives_but_not_identifiers() {
        let links: HashMap<String, String> = [
            ("urn:uuid:p".to_owned(), "Patient/1".to_owned()),
            ("Patient?identifier=a|1".to_owned(), "Patient/2".to_owned()),
        ]
        .into();
        let mut r = json!({
            "resourceType": "Immunization",
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"urn:uuid:p\">p</a><img src=\"urn:uuid:q\"/>shots</div>"},
            "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:p"}],
            "patient": {"reference": "urn:uuid:p"},
            "performer": [{"actor": {"reference": "Patient?identifier=a|1"}}],
            "extension": [{"url": "http://x/ext", "valueUri": "urn:uuid:p"}],
        });
        rewrite(&mut r, &links);
        assert_eq!(r["patient"]["reference"], "Patient/1");
        assert_eq!(r["performer"][0]["actor"]["reference"], "Patient/2");
        assert_eq!(r["extension"][0]["valueUri"], "Patient/1");
        assert_eq!(r["identifier"][0]["value"], "urn:uuid:p");
        assert_eq!(
            r["text"]["div"],
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"Patient/1\">p</a><img src=\"urn:uuid:q\"/>shots</div>"
        );
        assert_eq!(unresolved(&r), None);
        assert_eq!(
            unresolved(&json!({"subject": {"reference": "urn:uuid:z"}})).as_deref(),
            Some("urn:uuid:z")
        );
    }

    #[test]
    fn conditional_references_are_recognised() {
        let base = "http://x/fhir";
        assert_eq!(
            conditional("Patient?identifier=a|1", base),
            Some(("Patient", "identifier=a|1"))
        );
        assert_eq!(
            conditional("http://x/fhir/Patient?identifier=a|1", base),
            Some(("Patient", "identifier=a|1"))
        );
        assert_eq!(
            conditional("http://y/fhir/Patient?identifier=a", base),
            None
        );
        assert_eq!(conditional("Patient/1", base), None);
        assert_eq!(conditional("urn:uuid:1", base), None);
        assert_eq!(conditional("Nothing?x=1", base), None);
    }
}
