"""Regenerates data/elements.json: per R4 resource type, its summary and mandatory top-level elements.

Run from the project root: python3 fhir-profiles/gen/elements.py
"""
import json

SOURCE = "../shared/fhir-r4/profiles-resources.json"
bundle = json.load(open(SOURCE))
out = {}
for entry in bundle["entry"]:
    sd = entry["resource"]
    if sd["resourceType"] != "StructureDefinition" or sd.get("kind") != "resource" or sd.get("abstract"):
        continue
    if sd["name"] == "SubscriptionStatus":  # not part of R4 4.0.1
        continue
    summary, mandatory = [], []
    for element in sd["snapshot"]["element"]:
        parts = element["path"].split(".")
        if len(parts) != 2:
            continue
        if element.get("isSummary"):
            summary.append(parts[1])
        if element.get("min", 0) >= 1:
            mandatory.append(parts[1])
    out[sd["name"]] = {"summary": summary, "mandatory": mandatory}
json.dump(out, open("fhir-profiles/data/elements.json", "w"), separators=(",", ":"), sort_keys=True)
