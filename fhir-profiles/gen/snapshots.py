"""Generates the snapshots of the profiles Healthbook ships (fhir-profiles/vn/*.json) from
their differentials and the official R4 base definitions (profiling.html#snapshot):

1. start from the base resource's snapshot (profiles-resources.json);
2. unfold the data types the differential constrains inside (Identifier, ContactPoint,
   CodeableConcept, Coding, Reference...: their elements from profiles-types.json, below
   the element's path);
3. add each slice (an element with a sliceName) after its sliced element, with the
   unfolded children the differential constrains;
4. overlay each differential element on its snapshot element (min, max, fixed/pattern,
   type, slicing, short; constraints are added to the base's).

Run from the project root: python3 fhir-profiles/gen/snapshots.py
"""
import copy
import glob
import json

R4 = "../shared/fhir-r4/"
bases = {}
for name in ("profiles-resources.json", "profiles-types.json"):
    for entry in json.load(open(R4 + name))["entry"]:
        sd = entry["resource"]
        if sd["resourceType"] == "StructureDefinition" and sd.get("derivation") != "constraint":
            bases[sd["id"]] = sd


def type_elements(type_code, path, element_id):
    """The elements of data type `type_code`, re-rooted at `path` / `element_id`."""
    out = []
    for e in bases[type_code]["snapshot"]["element"][1:]:
        e = copy.deepcopy(e)
        rest = e["path"][len(type_code):]
        e["path"] = path + rest
        e["id"] = element_id + rest
        out.append(e)
    return out


def snapshot(profile):
    elements = copy.deepcopy(bases[profile["type"]]["snapshot"]["element"])
    by_id = {e["id"]: e for e in elements}
    for diff in profile["differential"]["element"]:
        element_id = diff["id"]
        if element_id in by_id:
            continue
        # A slice: copy the sliced element, named, after the last element of the base.
        if ":" in element_id.split(".")[-1]:
            base_id = element_id.rsplit(":", 1)[0]
            base = by_id[base_id]
            slice_ = copy.deepcopy(base)
            slice_["id"] = element_id
            slice_["sliceName"] = diff["sliceName"]
            slice_.pop("slicing", None)
            position = max(i for i, e in enumerate(elements) if e["id"] == base_id or e["id"].startswith((base_id + ".", base_id + ":")))
            elements.insert(position + 1, slice_)
            by_id[element_id] = slice_
            continue
        # An element inside a data type: unfold the type below its parent.
        parent_id = element_id.rsplit(".", 1)[0]
        parent = by_id[parent_id]
        type_code = parent["type"][0]["code"]
        unfolded = type_elements(type_code, parent["path"], parent_id)
        position = elements.index(parent)
        elements[position + 1:position + 1] = unfolded
        by_id.update({e["id"]: e for e in unfolded})
        if element_id not in by_id:
            raise SystemExit(f"{profile['id']}: cannot place {element_id}")
    for diff in profile["differential"]["element"]:
        target = by_id[diff["id"]]
        for key, value in diff.items():
            if key in ("id", "path"):
                continue
            if key == "constraint":
                target["constraint"] = target.get("constraint", []) + value
            else:
                target[key] = value
    return elements


for path in sorted(glob.glob("fhir-profiles/vn/StructureDefinition-*.json")):
    profile = json.load(open(path))
    profile["snapshot"] = {"element": snapshot(profile)}
    with open(path, "w") as f:
        json.dump(profile, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(path, len(profile["snapshot"]["element"]), "snapshot elements")
