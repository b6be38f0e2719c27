"""Checks of the synthetic population generator.

    python3 -m unittest discover -s bench/gen
"""

import datetime as dt
import filecmp
import json
import os
import re
import tempfile
import unicodedata
import unittest

import population

N = 300
SEED = 7
TYPES = population.RESOURCE_TYPES
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+07:00$")
PHONE = re.compile(r"^\+84(9[01367]|9[8]|3[2-9]|7[0-9]|8[1-9])\d{7}$")


def read(folder, rtype):
    with open(os.path.join(folder, f"{rtype}.ndjson"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def walk(value, path="$"):
    """Yields (path, problem) for empty or badly formed values anywhere in a resource."""
    if isinstance(value, dict):
        if not value:
            yield path, "empty object"
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        if not value:
            yield path, "empty array"
        for i, v in enumerate(value):
            yield from walk(v, f"{path}[{i}]")
    elif isinstance(value, str):
        if not value.strip():
            yield path, "empty string"
        elif value != value.strip():
            yield path, "leading/trailing whitespace"
        if not unicodedata.is_normalized("NFC", value):
            yield path, "not NFC"
    elif value is None:
        yield path, "null"


class PopulationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hb-pop-test-")
        cls.dir_a = os.path.join(cls.tmp.name, "a")
        cls.dir_b = os.path.join(cls.tmp.name, "b")
        cls.counts = population.generate(N, SEED, cls.dir_a)
        population.generate(N, SEED, cls.dir_b)
        cls.res = {t: read(cls.dir_a, t) for t in TYPES}
        cls.patients = {p["id"]: p for p in cls.res["Patient"]}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_deterministic(self):
        names = [f"{t}.ndjson" for t in TYPES] + [
            "queries/identifiers.txt", "queries/family_birthdate.txt", "queries/patient_ids.txt"]
        match, mismatch, errors = filecmp.cmpfiles(self.dir_a, self.dir_b, names, shallow=False)
        self.assertEqual((mismatch, errors), ([], []))
        self.assertEqual(len(match), len(names))

    def test_other_seed_differs(self):
        other = os.path.join(self.tmp.name, "other-seed")
        population.generate(20, SEED + 1, other)
        mine = [p["identifier"][0]["value"] for p in self.res["Patient"][:20]]
        theirs = [p["identifier"][0]["value"] for p in read(other, "Patient")]
        self.assertNotEqual(mine, theirs)

    def test_prefix_stable(self):
        # The first M patients do not depend on N (only the query samples do).
        small = os.path.join(self.tmp.name, "prefix")
        population.generate(50, SEED, small)
        for t in TYPES:
            head = read(small, t)
            ids = {r["id"] for r in head}
            full = [r for r in self.res[t] if r["id"] in ids]
            self.assertEqual(head, full, t)

    def test_counts(self):
        self.assertEqual(self.counts["Patient"], N)
        for t in TYPES:
            self.assertEqual(self.counts[t], len(self.res[t]), t)
        self.assertGreaterEqual(self.counts["Immunization"], N)
        self.assertLessEqual(self.counts["Immunization"], 3 * N)
        self.assertGreater(self.counts["Observation"], 0)
        self.assertGreater(self.counts["Condition"], 0)

    def test_no_empty_values_and_ids(self):
        for t in TYPES:
            seen = set()
            for r in self.res[t]:
                self.assertEqual(r["resourceType"], t)
                self.assertRegex(r["id"], FHIR_ID)
                self.assertNotIn(r["id"], seen)
                seen.add(r["id"])
                self.assertEqual(list(walk(r)), [], r["id"])

    def test_resource_types_first_keys(self):
        # load.py's fast path reads resourceType and id from the start of each line.
        with open(os.path.join(self.dir_a, "Immunization.ndjson"), encoding="utf-8") as f:
            for line in f:
                self.assertTrue(line.startswith('{"resourceType":"Immunization","id":"imm-'))

    def test_patient_shape(self):
        genders = set()
        for p in self.res["Patient"]:
            self.assertIn(p["gender"], ("male", "female"))
            genders.add(p["gender"])
            self.assertRegex(p["birthDate"], DATE)
            self.assertTrue("1930-01-01" <= p["birthDate"] <= "2015-12-31", p["birthDate"])
            dt.date.fromisoformat(p["birthDate"])
            (name,) = p["name"]
            self.assertEqual(name["use"], "official")
            self.assertEqual(len(name["given"]), 2)
            self.assertEqual(name["text"], " ".join([name["family"], *name["given"]]))
            (tel,) = p["telecom"]
            self.assertEqual((tel["system"], tel["use"]), ("phone", "mobile"))
            self.assertRegex(tel["value"], PHONE)
            (addr,) = p["address"]
            self.assertEqual(addr["country"], "VN")
            self.assertEqual(addr["use"], "home")
        self.assertEqual(genders, {"male", "female"})
        families = {p["name"][0]["family"] for p in self.res["Patient"]}
        self.assertIn("Nguyễn", families)  # diacritics kept
        share = sum(p["name"][0]["family"] == "Nguyễn" for p in self.res["Patient"]) / N
        self.assertTrue(0.25 < share < 0.50, share)

    def test_cccd_digits(self):
        seen = set()
        for p in self.res["Patient"]:
            (ident,) = p["identifier"]
            self.assertEqual(ident["system"], "https://cccd.gov.vn")
            cccd = ident["value"]
            self.assertRegex(cccd, r"^\d{12}$")
            self.assertNotIn(cccd, seen, "CCCD not unique")
            seen.add(cccd)
            year = int(p["birthDate"][:4])
            female = p["gender"] == "female"
            expected_sex = (0 if year < 2000 else 2) + (1 if female else 0)
            self.assertEqual(int(cccd[3]), expected_sex, (cccd, p["gender"], year))
            self.assertEqual(cccd[4:6], f"{year % 100:02d}", (cccd, year))
            self.assertIn(cccd[:3], population.PROVINCE_BY_CODE)
            self.assertEqual(p["address"][0]["city"], population.PROVINCE_BY_CODE[cccd[:3]])

    def test_cccd_issuer_unique_within_key(self):
        issuer = population.CccdIssuer(SEED)
        numbers = {issuer.issue("001", 1, 1990) for _ in range(20_000)}
        self.assertEqual(len(numbers), 20_000)
        self.assertTrue(all(n.startswith("001190") for n in numbers))

    def test_immunizations(self):
        by_patient = {}
        for imm in self.res["Immunization"]:
            self.assertEqual(imm["status"], "completed")
            ref = imm["patient"]["reference"]
            self.assertTrue(ref.startswith("Patient/"))
            self.assertIn(ref[len("Patient/"):], self.patients, "dangling patient reference")
            (coding,) = imm["vaccineCode"]["coding"]
            self.assertEqual(coding["system"], "http://hl7.org/fhir/sid/cvx")
            self.assertIn(coding["code"], population.VACCINES)
            self.assertEqual(coding["display"], population.VACCINES[coding["code"]][0])
            self.assertRegex(imm["occurrenceDateTime"], DATETIME)
            self.assertTrue(
                "2021-03-01" <= imm["occurrenceDateTime"][:10] <= "2022-12-31",
                imm["occurrenceDateTime"])
            self.assertRegex(imm["lotNumber"], r"^[A-Z0-9]{5,12}$")
            (proto,) = imm["protocolApplied"]
            self.assertIsInstance(proto["doseNumberPositiveInt"], int)
            by_patient.setdefault(ref, []).append(imm)
        self.assertEqual(len(by_patient), N, "every patient has 1-3 immunizations")
        for ref, imms in by_patient.items():
            self.assertTrue(1 <= len(imms) <= 3)
            doses = [i["protocolApplied"][0]["doseNumberPositiveInt"] for i in imms]
            self.assertEqual(doses, list(range(1, len(imms) + 1)), ref)
            days = [dt.date.fromisoformat(i["occurrenceDateTime"][:10]) for i in imms]
            for a, b in zip(days, days[1:]):
                self.assertGreaterEqual((b - a).days, 28, (ref, days))
            birth = dt.date.fromisoformat(self.patients[ref[8:]]["birthDate"])
            self.assertGreater(days[0], birth)

    def test_observations(self):
        for obs in self.res["Observation"]:
            self.assertEqual(obs["status"], "final")
            self.assertIn(obs["subject"]["reference"][8:], self.patients)
            self.assertRegex(obs["effectiveDateTime"], DATETIME)
            self.assertTrue("2021-01-01" <= obs["effectiveDateTime"][:10] <= "2022-12-31")
            code = obs["code"]["coding"][0]["code"]
            cat = obs["category"][0]["coding"][0]
            self.assertEqual(cat["system"],
                             "http://terminology.hl7.org/CodeSystem/observation-category")
            if code == "29463-7":
                self.assertEqual(cat["code"], "vital-signs")
                q = obs["valueQuantity"]
                self.assertEqual((q["unit"], q["system"], q["code"]),
                                 ("kg", "http://unitsofmeasure.org", "kg"))
                self.assertIsInstance(q["value"], float)
                self.assertTrue(5 < q["value"] < 150, q["value"])
            else:
                self.assertEqual(code, "94500-6")
                self.assertEqual(cat["code"], "laboratory")
                self.assertIn(obs["valueCodeableConcept"]["coding"][0]["code"],
                              ("260385009", "10828004"))

    def test_conditions(self):
        for c in self.res["Condition"]:
            self.assertIn(c["subject"]["reference"][8:], self.patients)
            status = c["clinicalStatus"]["coding"][0]
            self.assertEqual(status["system"],
                             "http://terminology.hl7.org/CodeSystem/condition-clinical")
            self.assertIn(status["code"], ("active", "resolved"))
            self.assertIn(c["code"]["coding"][0]["code"], ("840539006", "38341003", "44054006"))
            self.assertRegex(c["onsetDateTime"], DATETIME)
            birth = self.patients[c["subject"]["reference"][8:]]["birthDate"]
            self.assertGreater(c["onsetDateTime"][:10], birth)
            if "abatementDateTime" in c:  # con-4: abatement only when no longer active
                self.assertEqual(status["code"], "resolved")
                self.assertGreater(c["abatementDateTime"], c["onsetDateTime"])

    def test_query_files(self):
        q = os.path.join(self.dir_a, "queries")

        def lines(name):
            with open(os.path.join(q, name), encoding="utf-8") as f:
                return f.read().splitlines()

        ids = lines("patient_ids.txt")
        idents = lines("identifiers.txt")
        fam = lines("family_birthdate.txt")
        self.assertEqual(len(ids), N)  # N < 10,000: every patient
        self.assertEqual(len(idents), len(ids))
        self.assertEqual(len(fam), len(ids))
        for pid, ident, fb in zip(ids, idents, fam):
            p = self.patients[pid]
            self.assertEqual(ident, f"https://cccd.gov.vn|{p['identifier'][0]['value']}")
            self.assertEqual(fb, f"{p['name'][0]['family']}\t{p['birthDate']}")

    def test_query_sampling_caps_lines(self):
        small = os.path.join(self.tmp.name, "capped")
        population.generate(95, SEED, small, query_lines=10)
        with open(os.path.join(small, "queries", "patient_ids.txt")) as f:
            ids = f.read().splitlines()
        self.assertEqual(ids, [f"p-{SEED}-{n}" for n in range(1, 96, 10)])


if __name__ == "__main__":
    unittest.main()
