//! Writes Bundles as JSON text around stored resources, without re-parsing them
//! (bundle.html; the element order follows the Bundle definition).

use serde_json::{json, Value};

use super::stored::{instant, now_ms};

/// Incrementally written Bundle JSON.
pub struct BundleWriter {
    out: String,
    entries: usize,
}

impl BundleWriter {
    /// Starts a Bundle of `bundle_type` with its `total` and `link`s (relation, url).
    pub fn new(bundle_type: &str, total: Option<i64>, links: &[(&str, String)]) -> Self {
        let mut out = String::with_capacity(4096);
        out.push_str(r#"{"resourceType":"Bundle","id":"#);
        out.push_str(&Value::String(uuid::Uuid::new_v4().to_string()).to_string());
        out.push_str(r#","meta":{"lastUpdated":"#);
        out.push_str(&Value::String(instant(now_ms())).to_string());
        out.push_str(r#"},"type":"#);
        out.push_str(&Value::String(bundle_type.to_owned()).to_string());
        if let Some(total) = total {
            out.push_str(&format!(r#","total":{total}"#));
        }
        if !links.is_empty() {
            let links: Vec<Value> = links
                .iter()
                .map(|(relation, url)| json!({"relation": relation, "url": url}))
                .collect();
            out.push_str(r#","link":"#);
            out.push_str(&Value::Array(links).to_string());
        }
        Self { out, entries: 0 }
    }

    /// Appends an entry: `fullUrl` (if any), the stored resource JSON (if any), then the
    /// other entry elements (`search`, `request`, `response`) in the order given.
    pub fn entry(
        &mut self,
        full_url: Option<&str>,
        resource: Option<&str>,
        rest: &[(&str, Value)],
    ) {
        self.out.push_str(if self.entries == 0 {
            r#","entry":[{"#
        } else {
            ",{"
        });
        self.entries += 1;
        let mut elements = Vec::with_capacity(2 + rest.len());
        if let Some(url) = full_url {
            elements.push(format!(r#""fullUrl":{}"#, Value::String(url.to_owned())));
        }
        if let Some(resource) = resource {
            elements.push(format!(r#""resource":{resource}"#));
        }
        for (name, value) in rest {
            elements.push(format!("{}:{}", Value::String((*name).to_owned()), value));
        }
        self.out.push_str(&elements.join(","));
        self.out.push('}');
    }

    /// The finished Bundle JSON.
    pub fn finish(mut self) -> String {
        if self.entries > 0 {
            self.out.push(']');
        }
        self.out.push('}');
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_bundle_json() {
        let mut w = BundleWriter::new(
            "history",
            Some(2),
            &[("self", "http://x/fhir/_history".into())],
        );
        w.entry(
            Some("http://x/fhir/Patient/1"),
            Some(r#"{"resourceType":"Patient","id":"1"}"#),
            &[("request", json!({"method":"POST","url":"Patient"}))],
        );
        w.entry(Some("http://x/fhir/Patient/2"), None, &[]);
        w.entry(
            None,
            None,
            &[("response", json!({"status": "204 No Content"}))],
        );
        let v: Value = serde_json::from_str(&w.finish()).unwrap();
        assert_eq!(v["total"], 2);
        assert_eq!(v["entry"][0]["resource"]["id"], "1");
        assert_eq!(v["entry"][1]["fullUrl"], "http://x/fhir/Patient/2");
        assert_eq!(v["entry"][2]["response"]["status"], "204 No Content");
        let empty: Value =
            serde_json::from_str(&BundleWriter::new("history", None, &[]).finish()).unwrap();
        assert!(empty.get("entry").is_none());
    }
}
