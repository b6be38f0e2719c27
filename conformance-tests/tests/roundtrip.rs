//! Every R4 resource type round-trips: a resource generated from the official definitions
//! (`fhir-profiles/data/types.json`: each required element filled, at every depth, codes
//! from the required value sets) is accepted by create (http.html#create: it passes every
//! validation rule) and read back unchanged but for `id` and `meta` (http.html#read).

use std::collections::{BTreeMap, HashMap};

use conformance_tests::*;

/// One element definition of `types.json`.
struct Element {
    min: u64,
    max: String,
    types: Vec<String>,
    content_reference: Option<String>,
    binding: Option<String>,
}

impl Element {
    fn from(v: &Value) -> Self {
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        Self {
            min: v["min"].as_u64().unwrap_or(0),
            max: text("max").unwrap_or_else(|| "1".into()),
            types: v["types"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect(),
            content_reference: text("ref"),
            binding: text("binding"),
        }
    }
}

struct Definitions {
    elements: BTreeMap<String, Element>,
    value_sets: HashMap<String, Vec<(String, String)>>,
}

fn definitions() -> Definitions {
    let read = |file: &str| {
        std::fs::read_to_string(format!(
            "{}/../fhir-profiles/data/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    Definitions {
        elements: serde_json::from_str::<BTreeMap<String, Value>>(&read("types.json"))
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), Element::from(v)))
            .collect(),
        value_sets: serde_json::from_str(&read("valuesets.json")).unwrap(),
    }
}

impl Definitions {
    /// The elements directly under `path`, by name.
    fn children(&self, path: &str) -> Vec<(&str, &Element)> {
        let prefix = format!("{path}.");
        self.elements
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| !k[prefix.len()..].contains('.'))
            .map(|(k, v)| (&k[prefix.len()..], v))
            .collect()
    }

    /// An object for the element or type at `path` with every required child, or one
    /// optional primitive when nothing is required (an element has a value or children).
    fn object(&self, path: &str) -> Value {
        let mut out = serde_json::Map::new();
        let children = self.children(path);
        for (name, element) in &children {
            if element.min >= 1 && !matches!(*name, "id" | "extension" | "modifierExtension") {
                let (key, value) = self.element(path, name, element);
                out.insert(key, value);
            }
        }
        if out.is_empty() {
            let optional = children.iter().find(|(name, e)| {
                !matches!(
                    *name,
                    "id" | "extension" | "modifierExtension" | "language" | "implicitRules"
                ) && e.content_reference.is_none()
                    && e.types.len() == 1
                    && primitive(&e.types[0]).is_some()
                    && e.binding.is_none()
            });
            if let Some((name, element)) = optional {
                let (key, value) = self.element(path, name, element);
                out.insert(key, value);
            }
        }
        Value::Object(out)
    }

    fn element(&self, parent: &str, name: &str, element: &Element) -> (String, Value) {
        let (key, type_code) = match name.strip_suffix("[x]") {
            Some(stem) => {
                let t = element.types.first().cloned().unwrap_or_default();
                let mut chars = t.chars();
                let capitalised = chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default();
                (format!("{stem}{capitalised}"), t)
            }
            None => (
                name.to_owned(),
                element.types.first().cloned().unwrap_or_default(),
            ),
        };
        let value = if let Some(target) = &element.content_reference {
            self.object(target)
        } else if let Some(url) = &element.binding {
            let (system, code) = self.value_sets[url][0].clone();
            match type_code.as_str() {
                "code" => json!(code),
                "Coding" => json!({"system": system, "code": code}),
                _ => json!({"coding": [{"system": system, "code": code}]}),
            }
        } else if let Some(v) = primitive(&type_code) {
            v
        } else if matches!(type_code.as_str(), "BackboneElement" | "Element") {
            self.object(&format!("{parent}.{name}"))
        } else if type_code == "Resource" {
            json!({"resourceType": "Basic", "code": {"text": "x"}})
        } else {
            self.object(&type_code)
        };
        // qty-3: a Quantity with a unit code names the code system.
        let value = match value {
            Value::Object(mut o) if type_code == "Quantity" && o.contains_key("code") => {
                o.entry("system")
                    .or_insert_with(|| json!("http://unitsofmeasure.org"));
                Value::Object(o)
            }
            v => v,
        };
        let value = if element.max == "1" {
            value
        } else {
            json!([value])
        };
        (key, value)
    }
}

/// A valid value of a primitive type.
fn primitive(type_code: &str) -> Option<Value> {
    Some(match type_code {
        "boolean" => json!(true),
        "integer" | "unsignedInt" | "positiveInt" => json!(1),
        "decimal" => json!(1.5),
        "string" | "markdown" | "System.String" => json!("x"),
        "code" => json!("x"),
        "id" => json!("x1"),
        "uri" | "url" | "canonical" => json!("http://example.org/x"),
        "oid" => json!("urn:oid:1.2.3"),
        "uuid" => json!("urn:uuid:c757873d-ec9a-4326-a141-556f43239520"),
        "date" => json!("2021-08-01"),
        "dateTime" => json!("2021-08-01T09:00:00+07:00"),
        "instant" => json!("2021-08-01T09:00:00.000+07:00"),
        "time" => json!("09:00:00"),
        "base64Binary" => json!("aGVsbG8="),
        "xhtml" => json!("<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"),
        _ => return None,
    })
}

/// Every resource type, generated, created and read back unchanged.
#[test]
fn every_resource_type_round_trips() {
    let defs = definitions();
    let types: Vec<String> = serde_json::from_str::<BTreeMap<String, Value>>(
        &std::fs::read_to_string(format!(
            "{}/../fhir-profiles/data/elements.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap()
    .into_keys()
    .collect();
    assert!(types.len() > 140, "{} types", types.len());
    for s in servers() {
        let mut failures = Vec::new();
        for t in &types {
            let mut resource = defs.object(t);
            resource["resourceType"] = json!(t);
            if t == "SearchParameter" {
                // An active SearchParameter must be one the server can search by
                // (docs/SEARCH.md); the generated one is a composite without an expression.
                resource["status"] = json!("draft");
            }
            let resp = s.post(t, &resource);
            if resp.status != 201 {
                failures.push(format!("{t}: {} {}", resp.status, resp.text()));
                continue;
            }
            let created = resp.json();
            let mut read = s.read(t, &id_of(&created));
            for r in [&mut read, &mut resource] {
                let o = r.as_object_mut().unwrap();
                o.remove("id");
                o.remove("meta");
            }
            if read != resource {
                failures.push(format!("{t}: sent {resource}, read {read}"));
            }
        }
        assert!(
            failures.is_empty(),
            "[{}] {} of {} types failed:\n{}",
            s.backend,
            failures.len(),
            types.len(),
            failures.join("\n")
        );
    }
}
