"""Regenerates the data/ tables from the official R4 StructureDefinitions.

- data/elements.json: per resource type, its summary and mandatory top-level elements.
- data/types.json: per element path (Patient.birthDate, HumanName.family,
  Patient.contact.name, Observation.value[x]) its type codes, min (when 1 or more) and max
  cardinality, contentReference target, the value set of a required binding that can
  be expanded here, and the resource types a Reference may point at; what the structural
  checks walk.
- data/valuesets.json: every value set of valuesets.json that can be expanded here,
  url -> [[system, code], ...], from its CodeSystems and ValueSets (value sets with
  filters, or over code systems not given in full such as mime types, UCUM or currencies,
  are left out); what required bindings and the :in / :not-in search modifiers use.
- data/hierarchies.json: the code systems whose concepts nest, system -> {code: parent};
  what the :above / :below token search modifiers use.

Run from the project root: python3 fhir-profiles/gen/elements.py
"""
import json

R4 = "../shared/fhir-r4/"
resources = json.load(open(R4 + "profiles-resources.json"))
types = json.load(open(R4 + "profiles-types.json"))

terminology = json.load(open(R4 + "valuesets.json"))
code_systems = {e["resource"]["url"]: e["resource"] for e in terminology["entry"] if e["resource"]["resourceType"] == "CodeSystem"}
value_sets = {e["resource"]["url"]: e["resource"] for e in terminology["entry"] if e["resource"]["resourceType"] == "ValueSet"}

summary_out = {}
type_out = {}
expansions = {}


def concepts(concept_list):
    for c in concept_list:
        yield c["code"]
        yield from concepts(c.get("concept", []))


def expand(url, depth=0):
    """[(system, code)] of a value set, or None when it cannot be expanded here."""
    vs = value_sets.get(url.split("|")[0])
    if vs is None or depth > 5:
        return None
    out = []
    for include in vs.get("compose", {}).get("include", []):
        if "filter" in include:
            return None
        for imported in include.get("valueSet", []):
            more = expand(imported, depth + 1)
            if more is None:
                return None
            out += more
        system = include.get("system")
        if "concept" in include:
            out += [(system, c["code"]) for c in include["concept"]]
        elif system:
            cs = code_systems.get(system)
            if cs is None or cs.get("content") != "complete":
                return None
            out += [(system, code) for code in concepts(cs.get("concept", []))]
    return sorted(set(out))


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
        if element.get("min", 0) >= 1:
            info["min"] = element["min"]
        binding = element.get("binding", {})
        if binding.get("strength") == "required" and "valueSet" in binding:
            url = binding["valueSet"].split("|")[0]
            expansion = expand(url)
            if expansion is not None:
                info["binding"] = url
                expansions[url] = [list(pair) for pair in expansion]
        codes = []
        targets = set()
        for t in element.get("type", []):
            code = t["code"]
            if code == "Reference":
                targets.update(p.rsplit("/", 1)[1] for p in t.get("targetProfile", []))
            if code.startswith("http://hl7.org/fhirpath/System."):
                code = "System." + code.rsplit(".", 1)[1]
            codes.append(code)
        if codes:
            info["types"] = codes
        # The resource types a Reference may point at (none listed, or Resource: any).
        if targets and "Resource" not in targets:
            info["targets"] = sorted(targets)
        if "contentReference" in element:
            info["ref"] = element["contentReference"].lstrip("#")
        type_out[path] = info
    if is_resource:
        summary_out[sd["name"]] = {"summary": summary, "mandatory": mandatory}

json.dump(summary_out, open("fhir-profiles/data/elements.json", "w"), separators=(",", ":"), sort_keys=True)
json.dump(type_out, open("fhir-profiles/data/types.json", "w"), separators=(",", ":"), sort_keys=True)
for url in value_sets:
    if url not in expansions:
        expansion = expand(url)
        if expansion:
            expansions[url] = [list(pair) for pair in expansion]
json.dump(expansions, open("fhir-profiles/data/valuesets.json", "w"), separators=(",", ":"), sort_keys=True)

# data/hierarchies.json: the CodeSystems of R4 whose concepts nest (subsumption by
# hierarchy, codesystem.html#hierarchy), system -> {code: parent code}; what the token
# search modifiers :above and :below use.
hierarchies = {}


def parents(concept_list, parent, out):
    for c in concept_list:
        if parent is not None:
            out[c["code"]] = parent
        parents(c.get("concept", []), c["code"], out)


for url, cs in code_systems.items():
    if cs.get("hierarchyMeaning", "is-a") != "is-a" or cs.get("content") != "complete":
        continue
    found = {}
    parents(cs.get("concept", []), None, found)
    if found:
        hierarchies[url] = found
json.dump(hierarchies, open("fhir-profiles/data/hierarchies.json", "w"), separators=(",", ":"), sort_keys=True)

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
