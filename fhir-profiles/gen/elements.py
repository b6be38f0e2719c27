"""Regenerates the data/ tables from the official R4 StructureDefinitions.

- data/elements.json: per resource type, its summary and mandatory top-level elements.
- data/types.json: per element path (Patient.birthDate, HumanName.family,
  Patient.contact.name, Observation.value[x]) its type codes, max cardinality, and
  contentReference target; what the primitive-format checks walk.

Run from the project root: python3 fhir-profiles/gen/elements.py
"""
import json

R4 = "../shared/fhir-r4/"
resources = json.load(open(R4 + "profiles-resources.json"))
types = json.load(open(R4 + "profiles-types.json"))

summary_out = {}
type_out = {}


def definitions(bundle):
    for entry in bundle["entry"]:
        sd = entry["resource"]
        if sd["resourceType"] != "StructureDefinition" or sd["name"] == "SubscriptionStatus":
            continue  # SubscriptionStatus is not part of R4 4.0.1
        yield sd


for sd in list(definitions(resources)) + list(definitions(types)):
    kind = sd.get("kind")
    if kind not in ("resource", "complex-type", "primitive-type"):
        continue
    if sd.get("derivation") == "constraint":
        continue  # profiles such as SimpleQuantity share the base type's elements
    is_resource = kind == "resource" and not sd.get("abstract")
    summary, mandatory = [], []
    for element in sd["snapshot"]["element"]:
        path = element["path"]
        parts = path.split(".")
        if len(parts) == 1:
            continue
        if is_resource and len(parts) == 2:
            if element.get("isSummary"):
                summary.append(parts[1])
            if element.get("min", 0) >= 1:
                mandatory.append(parts[1])
        info = {"max": element.get("max", "1")}
        codes = []
        for t in element.get("type", []):
            code = t["code"]
            if code.startswith("http://hl7.org/fhirpath/System."):
                code = "System." + code.rsplit(".", 1)[1]
            codes.append(code)
        if codes:
            info["types"] = codes
        if "contentReference" in element:
            info["ref"] = element["contentReference"].lstrip("#")
        type_out[path] = info
    if is_resource:
        summary_out[sd["name"]] = {"summary": summary, "mandatory": mandatory}

json.dump(summary_out, open("fhir-profiles/data/elements.json", "w"), separators=(",", ":"), sort_keys=True)
json.dump(type_out, open("fhir-profiles/data/types.json", "w"), separators=(",", ":"), sort_keys=True)

# data/search-parameters.json: the 1,378 standard SearchParameters, trimmed to what the
# server evaluates (search.html); data/compartment-patient.json: per resource type, the
# search parameters that put it in a Patient's compartment.
search = json.load(open(R4 + "search-parameters.json"))
params = []
for entry in search["entry"]:
    sp = entry["resource"]
    if "SubscriptionStatus" in sp.get("base", []):
        continue
    row = {"code": sp["code"], "base": sp["base"], "type": sp["type"], "url": sp["url"]}
    for key in ("expression", "target", "modifier", "comparator", "multipleOr", "multipleAnd"):
        if key in sp:
            row[key] = sp[key]
    if "component" in sp:
        row["component"] = [{"definition": c["definition"], "expression": c["expression"]} for c in sp["component"]]
    params.append(row)
json.dump(params, open("fhir-profiles/data/search-parameters.json", "w"), separators=(",", ":"))

compartment = json.load(open(R4 + "compartmentdefinition-patient.json"))
members = {r["code"]: r["param"] for r in compartment["resource"] if r.get("param")}
json.dump(members, open("fhir-profiles/data/compartment-patient.json", "w"), separators=(",", ":"), sort_keys=True)
