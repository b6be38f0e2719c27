#!/usr/bin/env python3
"""Deterministic synthetic Vietnamese population for the Healthbook benchmarks.

    python3 bench/gen/population.py --patients 100000 --seed 7 --out /tmp/pop

writes, as NDJSON (one FHIR R4 resource per line, UTF-8, NFC):

    DIR/Patient.ndjson  DIR/Immunization.ndjson  DIR/Observation.ndjson  DIR/Condition.ndjson

and side files for the load scenarios (one value per line, at most --query-lines lines):

    DIR/queries/identifiers.txt       https://cccd.gov.vn|<cccd>
    DIR/queries/family_birthdate.txt  <family>\t<birthDate>
    DIR/queries/patient_ids.txt       <patient id>

Python 3.11 standard library only. Everything comes from one random.Random(seed) stream
consumed patient by patient (plus keyed hashes of the seed for the CCCD serials), so the
output depends only on (seed, N), and the first M patients of an N-patient run are the same
as those of an M-patient run (the query side files differ: they sample every k-th patient
with k depending on N). Output is streamed: memory stays flat whatever N is.

See README.md for the CCCD digit layout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
import time
import unicodedata
from bisect import bisect_right
from itertools import accumulate
from random import Random

CCCD_SYSTEM = "https://cccd.gov.vn"
CVX_SYSTEM = "http://hl7.org/fhir/sid/cvx"
LOINC_SYSTEM = "http://loinc.org"
SNOMED_SYSTEM = "http://snomed.info/sct"
UCUM_SYSTEM = "http://unitsofmeasure.org"
OBS_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
COND_CLINICAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-clinical"
COND_VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
COND_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-category"
V2_0203_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"

TZ = "+07:00"  # Asia/Ho_Chi_Minh, no DST

RESOURCE_TYPES = ("Patient", "Immunization", "Observation", "Condition")


def nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


class Weighted:
    """Weighted choice with precomputed cumulative weights: one rng.random() per pick."""

    __slots__ = ("values", "cum", "total", "last")

    def __init__(self, items):
        items = list(items)
        self.values = [v for v, _ in items]
        self.cum = list(accumulate(float(w) for _, w in items))
        self.total = self.cum[-1]
        self.last = len(self.values) - 1

    def pick(self, rng: Random):
        i = bisect_right(self.cum, rng.random() * self.total)
        return self.values[i if i < self.last else self.last]


# --- names ---------------------------------------------------------------------------------
# Family-name shares follow the commonly cited estimates for Vietnam (Nguyễn ~38%, Trần ~11%,
# Lê ~9.5%, Phạm ~7%, Hoàng/Huỳnh ~5%, Phan ~4.5%, Vũ/Võ ~3.9%, ...); the tail is rounded.

FAMILY = Weighted(
    (nfc(n), w)
    for n, w in [
        ("Nguyễn", 38.0), ("Trần", 11.0), ("Lê", 9.5), ("Phạm", 7.0),
        ("Hoàng", 3.0), ("Huỳnh", 2.1), ("Phan", 4.5), ("Vũ", 2.0), ("Võ", 1.9),
        ("Đặng", 2.1), ("Bùi", 2.0), ("Đỗ", 1.4), ("Hồ", 1.3), ("Ngô", 1.3),
        ("Dương", 1.0), ("Lý", 0.5), ("Đinh", 0.7), ("Trương", 0.7), ("Đoàn", 0.6),
        ("Lâm", 0.5), ("Mai", 0.5), ("Trịnh", 0.5), ("Cao", 0.4), ("Lương", 0.4),
        ("Hà", 0.4), ("Lưu", 0.3), ("Tô", 0.3), ("Tạ", 0.2), ("Châu", 0.2),
        ("Thái", 0.2), ("Quách", 0.1), ("Kiều", 0.1), ("La", 0.1), ("Triệu", 0.1),
        ("Phùng", 0.7), ("Vương", 0.4), ("Chu", 0.4), ("Tăng", 0.3), ("Thân", 0.3),
        ("Từ", 0.3), ("Tống", 0.3), ("Mạc", 0.2), ("Khúc", 0.2), ("Doãn", 0.2),
        ("Hứa", 0.2), ("Kim", 0.2), ("Diệp", 0.2), ("Lò", 0.2), ("Âu", 0.1),
        ("Giang", 0.2), ("Lục", 0.1), ("Nông", 0.3), ("Vi", 0.2), ("Lã", 0.1),
    ]  # weights sum to 100
)

# Middle names: Văn / Thị dominate among older people, much less among the young.
MIDDLE_MALE_OLD = Weighted(
    (nfc(n), w)
    for n, w in [
        ("Văn", 55), ("Đức", 8), ("Minh", 7), ("Quang", 6), ("Hữu", 6), ("Công", 4),
        ("Xuân", 4), ("Thanh", 3), ("Đình", 3), ("Ngọc", 2), ("Trọng", 2),
    ]
)
MIDDLE_MALE_YOUNG = Weighted(
    (nfc(n), w)
    for n, w in [
        ("Văn", 15), ("Minh", 14), ("Đức", 11), ("Quang", 9), ("Hữu", 6), ("Gia", 8),
        ("Hoàng", 7), ("Anh", 6), ("Thành", 5), ("Tuấn", 4), ("Trung", 4), ("Bảo", 6),
        ("Công", 3), ("Xuân", 2),
    ]
)
MIDDLE_FEMALE_OLD = Weighted(
    (nfc(n), w)
    for n, w in [
        ("Thị", 70), ("Ngọc", 6), ("Thu", 5), ("Thanh", 5), ("Kim", 4), ("Hồng", 4),
        ("Minh", 2), ("Xuân", 2), ("Mai", 2),
    ]
)
MIDDLE_FEMALE_YOUNG = Weighted(
    (nfc(n), w)
    for n, w in [
        ("Thị", 25), ("Ngọc", 12), ("Thu", 8), ("Thanh", 6), ("Minh", 7), ("Phương", 6),
        ("Bảo", 6), ("Khánh", 6), ("Thùy", 6), ("Kim", 4), ("Hồng", 3), ("Mai", 3),
        ("Hà", 4), ("Quỳnh", 4),
    ]
)

GIVEN_MALE = Weighted(
    (nfc(n), w)
    for n, w in [
        ("Anh", 8), ("Hùng", 6), ("Dũng", 6), ("Tuấn", 6), ("Đạt", 4), ("Hải", 5),
        ("Nam", 5), ("Long", 5), ("Minh", 6), ("Quân", 4), ("Huy", 5), ("Khoa", 3),
        ("Phúc", 3), ("Thắng", 3), ("Sơn", 4), ("Cường", 4), ("Trung", 4), ("Hiếu", 3),
        ("Bảo", 3), ("Khang", 2), ("Duy", 3), ("Thịnh", 2), ("Tài", 2), ("Lộc", 2),
        ("Vinh", 3), ("Hoàng", 3), ("Kiên", 2), ("Tùng", 3), ("Toàn", 2), ("Phong", 3),
        ("Thành", 4), ("Tâm", 2), ("Hưng", 3), ("Quang", 2), ("Việt", 2), ("Nghĩa", 2),
    ]
)
GIVEN_FEMALE = Weighted(
    (nfc(n), w)
    for n, w in [
        ("Anh", 7), ("Hương", 6), ("Lan", 5), ("Mai", 5), ("Thảo", 5), ("Phương", 5),
        ("Hà", 5), ("Linh", 7), ("Trang", 6), ("Quỳnh", 4), ("Ngọc", 4), ("Hoa", 4),
        ("Hằng", 4), ("Nhung", 3), ("Yến", 3), ("Vy", 3), ("Nhi", 3), ("Thủy", 4),
        ("Huyền", 4), ("Chi", 3), ("Giang", 3), ("Hạnh", 3), ("Trâm", 2), ("Vân", 3),
        ("Dung", 3), ("Hiền", 3), ("Nga", 3), ("Oanh", 2), ("Tâm", 2), ("My", 3),
        ("Loan", 2), ("Liên", 2), ("Thu", 2), ("Uyên", 2),
    ]
)

# --- provinces -----------------------------------------------------------------------------
# (CCCD province code, province name, rough population weight in 100k, some districts).
# Codes are the province codes used in the first three CCCD digits (Circular 07/2016/TT-BCA,
# appendix; the provinces' administrative codes written with three digits).

PROVINCES = [
    ("001", "Hà Nội", 83, ["Ba Đình", "Hoàn Kiếm", "Đống Đa", "Cầu Giấy", "Hai Bà Trưng",
                           "Thanh Xuân", "Hoàng Mai", "Long Biên", "Tây Hồ", "Hà Đông"]),
    ("079", "Thành phố Hồ Chí Minh", 90, ["Quận 1", "Quận 3", "Quận 7", "Quận 10", "Bình Thạnh",
                                          "Gò Vấp", "Tân Bình", "Phú Nhuận", "Thủ Đức",
                                          "Bình Tân"]),
    ("031", "Hải Phòng", 20, ["Hồng Bàng", "Lê Chân", "Ngô Quyền", "Kiến An", "Hải An"]),
    ("048", "Đà Nẵng", 12, ["Hải Châu", "Thanh Khê", "Sơn Trà", "Ngũ Hành Sơn", "Liên Chiểu",
                            "Cẩm Lệ"]),
    ("092", "Cần Thơ", 12, ["Ninh Kiều", "Bình Thủy", "Cái Răng", "Ô Môn"]),
    ("038", "Thanh Hóa", 36, ["Thành phố Thanh Hóa", "Sầm Sơn", "Bỉm Sơn", "Hoằng Hóa"]),
    ("040", "Nghệ An", 33, ["Thành phố Vinh", "Cửa Lò", "Diễn Châu", "Quỳnh Lưu"]),
    ("075", "Đồng Nai", 31, ["Biên Hòa", "Long Khánh", "Nhơn Trạch", "Trảng Bom"]),
    ("074", "Bình Dương", 25, ["Thủ Dầu Một", "Dĩ An", "Thuận An", "Bến Cát"]),
    ("089", "An Giang", 19, ["Long Xuyên", "Châu Đốc", "Tân Châu"]),
    ("030", "Hải Dương", 19, ["Thành phố Hải Dương", "Chí Linh", "Kinh Môn"]),
    ("066", "Đắk Lắk", 19, ["Buôn Ma Thuột", "Buôn Hồ", "Krông Pắc"]),
    ("034", "Thái Bình", 19, ["Thành phố Thái Bình", "Đông Hưng", "Vũ Thư"]),
    ("024", "Bắc Giang", 18, ["Thành phố Bắc Giang", "Lục Nam", "Yên Dũng"]),
    ("036", "Nam Định", 18, ["Thành phố Nam Định", "Hải Hậu", "Giao Thủy"]),
    ("082", "Tiền Giang", 18, ["Mỹ Tho", "Gò Công", "Cai Lậy"]),
    ("091", "Kiên Giang", 17, ["Rạch Giá", "Phú Quốc", "Hà Tiên"]),
    ("080", "Long An", 17, ["Tân An", "Bến Lức", "Đức Hòa"]),
    ("087", "Đồng Tháp", 16, ["Cao Lãnh", "Sa Đéc", "Hồng Ngự"]),
    ("064", "Gia Lai", 15, ["Pleiku", "An Khê", "Chư Sê"]),
    ("049", "Quảng Nam", 15, ["Tam Kỳ", "Hội An", "Điện Bàn"]),
    ("052", "Bình Định", 15, ["Quy Nhơn", "An Nhơn", "Hoài Nhơn"]),
    ("025", "Phú Thọ", 15, ["Việt Trì", "Thị xã Phú Thọ", "Lâm Thao"]),
    ("027", "Bắc Ninh", 14, ["Thành phố Bắc Ninh", "Từ Sơn", "Tiên Du"]),
    ("022", "Quảng Ninh", 13, ["Hạ Long", "Cẩm Phả", "Uông Bí", "Móng Cái"]),
    ("042", "Hà Tĩnh", 13, ["Thành phố Hà Tĩnh", "Hồng Lĩnh", "Kỳ Anh"]),
    ("068", "Lâm Đồng", 13, ["Đà Lạt", "Bảo Lộc", "Đức Trọng"]),
    ("019", "Thái Nguyên", 13, ["Thành phố Thái Nguyên", "Sông Công", "Phổ Yên"]),
    ("056", "Khánh Hòa", 12, ["Nha Trang", "Cam Ranh", "Ninh Hòa"]),
    ("046", "Thừa Thiên Huế", 11, ["Thành phố Huế", "Hương Thủy", "Hương Trà"]),
    ("033", "Hưng Yên", 13, ["Thành phố Hưng Yên", "Văn Lâm", "Mỹ Hào"]),
    ("083", "Bến Tre", 13, ["Thành phố Bến Tre", "Châu Thành", "Mỏ Cày Nam"]),
    ("096", "Cà Mau", 12, ["Thành phố Cà Mau", "Năm Căn", "U Minh"]),
    ("026", "Vĩnh Phúc", 12, ["Vĩnh Yên", "Phúc Yên", "Bình Xuyên"]),
    ("077", "Bà Rịa - Vũng Tàu", 12, ["Vũng Tàu", "Bà Rịa", "Phú Mỹ"]),
]
PROVINCES = [(c, nfc(n), w, [nfc(d) for d in ds]) for c, n, w, ds in PROVINCES]
PROVINCE = Weighted(((c, n, ds), w) for c, n, w, ds in PROVINCES)
PROVINCE_BY_CODE = {c: n for c, n, _, _ in PROVINCES}

STREETS = [
    nfc(s)
    for s in [
        "Lê Lợi", "Nguyễn Huệ", "Trần Hưng Đạo", "Hai Bà Trưng", "Lý Thường Kiệt",
        "Điện Biên Phủ", "Nguyễn Trãi", "Lê Duẩn", "Quang Trung", "Hùng Vương",
        "Phan Chu Trinh", "Trần Phú", "Nguyễn Du", "Bà Triệu", "Lê Thánh Tông",
        "Võ Thị Sáu", "Cách Mạng Tháng Tám", "Nguyễn Văn Cừ", "Phạm Văn Đồng", "Hoàng Diệu",
        "Nguyễn Thị Minh Khai", "Lạc Long Quân", "Ngô Quyền", "Lê Hồng Phong", "Phan Đình Phùng",
        "Nguyễn Chí Thanh", "Tôn Đức Thắng", "Trường Chinh", "Láng Hạ", "Kim Mã",
    ]
]

# --- phones ----------------------------------------------------------------------------------
# Mobile prefixes after +84 (Viettel 32-39, 86, 96-98; Mobifone 70, 76-79, 89, 90, 93;
# Vinaphone 81-85, 88, 91, 94; others 87, 92, 99 not used here).
MOBILE_PREFIXES = (
    ["90", "91", "93", "96", "97", "98"]
    + [str(p) for p in range(32, 40)]
    + ["70", "76", "77", "78", "79"]
    + [str(p) for p in range(81, 90)]
)

# --- vaccines --------------------------------------------------------------------------------

VACCINES = {
    "207": ("COVID-19, mRNA, LNP-S, PF, 100 mcg/0.5mL dose or 50 mcg/0.25mL dose", "Moderna"),
    "208": ("COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose", "Pfizer-BioNTech"),
    "210": ("COVID-19 vaccine, vector-nr, rS-ChAdOx1, PF, 0.5 mL", "AstraZeneca"),
    "510": ("COVID-19 IV Non-US Vaccine (BIBP, Sinopharm)", "Sinopharm (BIBP)"),
    "511": ("COVID-19 IV Non-US Vaccine (CoronaVac, Sinovac)", "Sinovac"),
}
# Primary series (doses 1-2, same product) and boosters, roughly as supplied to Vietnam.
PRIMARY_ADULT = Weighted([("210", 40), ("208", 28), ("510", 20), ("207", 10), ("511", 2)])
PRIMARY_TEEN = Weighted([("208", 85), ("207", 15)])
BOOSTER = Weighted([("208", 45), ("207", 30), ("210", 25)])
DOSE_COUNT = Weighted([(1, 15), (2, 45), (3, 40)])

# Campaign windows (Vietnam): adults from 2021-03-08, 12-17 year olds from 2021-10,
# 5-11 year olds from 2022-04-14; every dose by 2022-12-31.
VAX_START_ADULT = dt.date(2021, 3, 8).toordinal()
VAX_START_TEEN = dt.date(2021, 10, 1).toordinal()
VAX_START_CHILD = dt.date(2022, 4, 14).toordinal()
VAX_END = dt.date(2022, 12, 31).toordinal()
MIN_GAP = 28

D2021 = dt.date(2021, 1, 1).toordinal()
D2022_END = dt.date(2022, 12, 31).toordinal()
D2021_05 = dt.date(2021, 5, 1).toordinal()

# Vaccination sites: the district health centre or the commune health station.
SITE_FORMATS = ["Trung tâm Y tế {d}", "Trạm Y tế phường {w}", "Bệnh viện Đa khoa {p}"]
WARD_NAMES = [nfc(w) for w in ["1", "2", "3", "5", "7", "9", "12", "Bến Nghé", "Tân Định",
                                "Phúc Xá", "Trúc Bạch", "Dịch Vọng", "Láng Thượng",
                                "Hòa Minh", "An Hải Bắc", "Cát Dài", "Xuân Khánh"]]

# --- conditions & observations ----------------------------------------------------------------

SNOMED_NEGATIVE = ("260385009", "Negative")
SNOMED_POSITIVE = ("10828004", "Positive")

COND_COVID = ("840539006", "Disease caused by SARS-CoV-2")
COND_HTN = ("38341003", "Hypertension")
COND_DM2 = ("44054006", "Diabetes mellitus type 2")

LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


# --- helpers ---------------------------------------------------------------------------------


def date_str(ordinal: int) -> str:
    return dt.date.fromordinal(ordinal).isoformat()


def datetime_str(rng: Random, ordinal: int) -> str:
    # Working hours 07:00-17:55, minutes in steps of 5.
    minute = rng.randrange(7 * 12, 18 * 12) * 5
    return f"{dt.date.fromordinal(ordinal).isoformat()}T{minute // 60:02d}:{minute % 60:02d}:00{TZ}"


def make_lots(rng: Random) -> dict[str, list[str]]:
    """A fixed pool of lot numbers per product (many doses share a lot, as in real life)."""

    def letters(n):
        return "".join(rng.choice(LETTERS) for _ in range(n))

    def digits(n):
        return "".join(str(rng.randrange(10)) for _ in range(n))

    lots = {}
    lots["210"] = [f"A{letters(2)}{digits(4)}" for _ in range(60)]  # e.g. ABV5811
    lots["208"] = [f"{letters(2)}{digits(4)}" for _ in range(60)]  # e.g. FK5127
    lots["207"] = [f"0{digits(2)}{rng.choice('ABCDEFGHJKL')}{digits(2)}A" for _ in range(40)]
    lots["510"] = [f"2021{rng.randrange(3, 13):02d}{rng.choice('ABC')}{digits(4)}"
                   for _ in range(40)]  # e.g. 202107B2385
    lots["511"] = [f"J2021{digits(5)}" for _ in range(20)]
    return lots


class CccdIssuer:
    """Unique CCCD numbers: 3-digit province, sex/century digit, 2-digit year, 6-digit serial.

    The serial is a keyed permutation (4-round Feistel over two base-1000 halves) of a
    counter kept per (province, sex/century, year): distinct counters give distinct serials,
    so every number is unique without a set of all numbers issued, and the serials look
    random. The key of each (province, sex/century, year) comes from a hash of the seed.
    """

    def __init__(self, seed: int):
        self.seed = seed
        self.state: dict[str, list] = {}

    def issue(self, province: str, sex_code: int, year: int) -> str:
        prefix = f"{province}{sex_code}{year % 100:02d}"
        st = self.state.get(prefix)
        if st is None:
            h = hashlib.blake2b(f"cccd|{self.seed}|{prefix}".encode(), digest_size=16).digest()
            keys = [int.from_bytes(h[i : i + 4], "big") for i in range(0, 16, 4)]
            st = self.state[prefix] = [0, keys]
        counter = st[0]
        if counter >= 1_000_000:
            raise RuntimeError(f"CCCD serials exhausted for {prefix}")
        st[0] = counter + 1
        hi, lo = divmod(counter, 1000)
        for k in st[1]:
            f = (((lo + 1) * 0x9E3779B1 ^ k) * 0x85EBCA6B >> 7) % 1000
            hi, lo = lo, (hi + f) % 1000
        return f"{prefix}{hi * 1000 + lo:06d}"


def sex_code(gender: str, year: int) -> int:
    """4th CCCD digit: 0/1 male/female born 1900-1999, 2/3 born 2000-2099, 4/5 2100-2199..."""
    century = (year - 1900) // 100
    return century * 2 + (1 if gender == "female" else 0)


# Birth years 1930-2015 weighted like a (smoothed) Vietnamese age pyramid.
def _year_weight(y: int) -> float:
    if y >= 1975:
        return 1.0 if not 1985 <= y <= 1995 else 1.1
    if y >= 1955:
        return 0.8
    if y >= 1945:
        return 0.45
    return 0.15


BIRTH_YEAR = Weighted((y, _year_weight(y)) for y in range(1930, 2016))


# --- generator -------------------------------------------------------------------------------


class Population:
    def __init__(self, seed: int):
        self.seed = seed
        self.rng = Random(seed)
        self.lots = make_lots(self.rng)
        self.cccd = CccdIssuer(seed)

    def patient(self, n: int):
        """Returns (patient resource, facts) for the n-th patient (1-based)."""
        rng = self.rng
        pid = f"p-{self.seed}-{n}"
        gender = "male" if rng.random() < 0.497 else "female"
        year = BIRTH_YEAR.pick(rng)
        start = dt.date(year, 1, 1).toordinal()
        end = dt.date(year, 12, 31).toordinal()
        birth = rng.randint(start, end)
        family = FAMILY.pick(rng)
        young = year >= 1985
        if gender == "male":
            middle = (MIDDLE_MALE_YOUNG if young else MIDDLE_MALE_OLD).pick(rng)
            given = GIVEN_MALE.pick(rng)
        else:
            middle = (MIDDLE_FEMALE_YOUNG if young else MIDDLE_FEMALE_OLD).pick(rng)
            given = GIVEN_FEMALE.pick(rng)
        if given == middle:  # "Minh Minh" is odd; take the next name on the list
            pool = GIVEN_MALE if gender == "male" else GIVEN_FEMALE
            given = pool.values[(pool.values.index(given) + 1) % len(pool.values)]
        code, pname, districts = PROVINCE.pick(rng)
        district = districts[rng.randrange(len(districts))]
        street = STREETS[rng.randrange(len(STREETS))]
        house = rng.randint(1, 350)
        if rng.random() < 0.3:
            line = f"{house}/{rng.randint(1, 60)} {street}"
        else:
            line = f"{house} {street}"
        phone = "+84" + MOBILE_PREFIXES[rng.randrange(len(MOBILE_PREFIXES))] + (
            f"{rng.randrange(10_000_000):07d}"
        )
        cccd = self.cccd.issue(code, sex_code(gender, year), year)
        birth_date = date_str(birth)
        resource = {
            "resourceType": "Patient",
            "id": pid,
            "identifier": [
                {
                    "use": "official",
                    "type": {
                        "coding": [{"system": V2_0203_SYSTEM, "code": "NI",
                                    "display": "National unique individual identifier"}],
                        "text": "CCCD",
                    },
                    "system": CCCD_SYSTEM,
                    "value": cccd,
                }
            ],
            "active": True,
            "name": [
                {
                    "use": "official",
                    "text": f"{family} {middle} {given}",
                    "family": family,
                    "given": [middle, given],
                }
            ],
            "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
            "gender": gender,
            "birthDate": birth_date,
            "address": [
                {
                    "use": "home",
                    "line": [line],
                    "district": district,
                    "city": pname,
                    "country": "VN",
                }
            ],
        }
        facts = {
            "id": pid,
            "birth": birth,
            "year": year,
            "gender": gender,
            "district": district,
            "province": pname,
            "family": family,
            "birthDate": birth_date,
            "cccd": cccd,
        }
        return resource, facts

    def site(self, facts) -> str:
        rng = self.rng
        fmt = SITE_FORMATS[rng.randrange(len(SITE_FORMATS))]
        return fmt.format(d=facts["district"], p=facts["province"],
                          w=WARD_NAMES[rng.randrange(len(WARD_NAMES))])

    def immunizations(self, n: int, facts):
        rng = self.rng
        year = facts["year"]
        doses = DOSE_COUNT.pick(rng)
        if year >= 2010:  # 5-11 in 2022 (born 2015 or earlier here)
            first_allowed, primary = VAX_START_CHILD, "208"
        elif year >= 2004:  # 12-17
            first_allowed, primary = VAX_START_TEEN, PRIMARY_TEEN.pick(rng)
        else:
            first_allowed, primary = VAX_START_ADULT, PRIMARY_ADULT.pick(rng)
        # Gaps: primary series 4-12 weeks, booster 3-8 months; shrink to the minimum when the
        # campaign window is too short for them.
        gaps = []
        if doses >= 2:
            gaps.append(rng.randint(MIN_GAP, 84))
        if doses >= 3:
            gaps.append(rng.randint(90, 240))
        latest_first = VAX_END - sum(gaps)
        if latest_first < first_allowed:
            gaps = [MIN_GAP] * len(gaps)
            latest_first = VAX_END - sum(gaps)
        day = rng.randint(first_allowed, latest_first)
        booster = BOOSTER.pick(rng) if doses >= 3 and year < 2004 else primary
        out = []
        for dose in range(1, doses + 1):
            if dose > 1:
                day += gaps[dose - 2]
            cvx = primary if dose <= 2 else booster
            display, maker = VACCINES[cvx]
            lots = self.lots[cvx]
            out.append(
                {
                    "resourceType": "Immunization",
                    "id": f"imm-{self.seed}-{n}-{dose}",
                    "status": "completed",
                    "vaccineCode": {
                        "coding": [{"system": CVX_SYSTEM, "code": cvx, "display": display}],
                        "text": f"COVID-19 {maker}",
                    },
                    "patient": {"reference": f"Patient/{facts['id']}"},
                    "occurrenceDateTime": datetime_str(rng, day),
                    "primarySource": True,
                    "location": {"display": self.site(facts)},
                    "manufacturer": {"display": maker},
                    "lotNumber": lots[rng.randrange(len(lots))],
                    "protocolApplied": [
                        {
                            "targetDisease": [
                                {"coding": [{"system": SNOMED_SYSTEM, "code": COND_COVID[0],
                                             "display": COND_COVID[1]}]}
                            ],
                            "doseNumberPositiveInt": dose,
                        }
                    ],
                }
            )
        return out

    def observations(self, n: int, facts):
        rng = self.rng
        if rng.random() >= 0.30:
            return []
        count = 1 if rng.random() < 0.6 else 2
        out = []
        for k in range(1, count + 1):
            day = rng.randint(D2021, D2022_END)
            when = datetime_str(rng, day)
            ref = {"reference": f"Patient/{facts['id']}"}
            if rng.random() < 0.5:
                age = (day - facts["birth"]) / 365.25
                if age >= 18:
                    mean = 63.0 if facts["gender"] == "male" else 53.0
                    kg = rng.gauss(mean, 9.0)
                else:
                    kg = rng.gauss(3.3 + 2.2 * age + 0.05 * age * age, 0.1 * (3.3 + 2.2 * age))
                kg = round(max(kg, 12.0 if age >= 4 else 8.0), 1)
                out.append(
                    {
                        "resourceType": "Observation",
                        "id": f"obs-{self.seed}-{n}-{k}",
                        "status": "final",
                        "category": [
                            {"coding": [{"system": OBS_CATEGORY_SYSTEM, "code": "vital-signs",
                                         "display": "Vital Signs"}]}
                        ],
                        "code": {
                            "coding": [{"system": LOINC_SYSTEM, "code": "29463-7",
                                        "display": "Body weight"}],
                            "text": "Body weight",
                        },
                        "subject": ref,
                        "effectiveDateTime": when,
                        "valueQuantity": {"value": kg, "unit": "kg", "system": UCUM_SYSTEM,
                                          "code": "kg"},
                    }
                )
            else:
                code, display = SNOMED_POSITIVE if rng.random() < 0.12 else SNOMED_NEGATIVE
                out.append(
                    {
                        "resourceType": "Observation",
                        "id": f"obs-{self.seed}-{n}-{k}",
                        "status": "final",
                        "category": [
                            {"coding": [{"system": OBS_CATEGORY_SYSTEM, "code": "laboratory",
                                         "display": "Laboratory"}]}
                        ],
                        "code": {
                            "coding": [{"system": LOINC_SYSTEM, "code": "94500-6",
                                        "display": "SARS-CoV-2 (COVID-19) RNA [Presence] in "
                                                   "Respiratory specimen by NAA with probe "
                                                   "detection"}],
                            "text": "SARS-CoV-2 RT-PCR",
                        },
                        "subject": ref,
                        "effectiveDateTime": when,
                        "valueCodeableConcept": {
                            "coding": [{"system": SNOMED_SYSTEM, "code": code,
                                        "display": display}],
                            "text": display,
                        },
                    }
                )
        return out

    def conditions(self, n: int, facts):
        rng = self.rng
        if rng.random() >= 0.10:
            return []
        age_2022 = 2022 - facts["year"]
        r = rng.random()
        if age_2022 >= 35 and r < 0.30:
            kind = COND_HTN
        elif age_2022 >= 35 and r < 0.45:
            kind = COND_DM2
        else:
            kind = COND_COVID
        cond = {
            "resourceType": "Condition",
            "id": f"cond-{self.seed}-{n}-1",
        }
        if kind is COND_COVID:
            onset = rng.randint(D2021_05, D2022_END - 30)
            clinical = "resolved" if rng.random() < 0.92 else "active"
            category = ("encounter-diagnosis", "Encounter Diagnosis")
        else:
            earliest = max(facts["birth"] + 30 * 365, dt.date(2000, 1, 1).toordinal())
            onset = rng.randint(earliest, D2022_END)
            clinical = "active"
            category = ("problem-list-item", "Problem List Item")
        cond["clinicalStatus"] = {
            "coding": [{"system": COND_CLINICAL_SYSTEM, "code": clinical,
                        "display": clinical.capitalize()}]
        }
        cond["verificationStatus"] = {
            "coding": [{"system": COND_VERIFICATION_SYSTEM, "code": "confirmed",
                        "display": "Confirmed"}]
        }
        cond["category"] = [
            {"coding": [{"system": COND_CATEGORY_SYSTEM, "code": category[0],
                         "display": category[1]}]}
        ]
        cond["code"] = {
            "coding": [{"system": SNOMED_SYSTEM, "code": kind[0], "display": kind[1]}],
            "text": kind[1],
        }
        cond["subject"] = {"reference": f"Patient/{facts['id']}"}
        cond["onsetDateTime"] = datetime_str(rng, onset)
        if clinical == "resolved":
            cond["abatementDateTime"] = datetime_str(rng, onset + rng.randint(7, 21))
        cond["recordedDate"] = date_str(onset + rng.randint(0, 2))
        return [cond]


def generate(patients: int, seed: int, out_dir: str, query_lines: int = 10_000,
             progress: bool = False) -> dict[str, int]:
    """Writes the population to out_dir; returns the count of each resource type."""
    if patients < 1:
        raise ValueError("--patients must be at least 1")
    os.makedirs(os.path.join(out_dir, "queries"), exist_ok=True)
    pop = Population(seed)
    counts = dict.fromkeys(RESOURCE_TYPES, 0)
    step = max(1, -(-patients // query_lines)) if query_lines > 0 else 0
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"),
                             check_circular=False).encode

    def opened(name):
        return open(os.path.join(out_dir, name), "w", encoding="utf-8", newline="\n",
                    buffering=1 << 20)

    files = {t: opened(f"{t}.ndjson") for t in RESOURCE_TYPES}
    q_ident = opened("queries/identifiers.txt")
    q_family = opened("queries/family_birthdate.txt")
    q_ids = opened("queries/patient_ids.txt")
    started = time.monotonic()
    last = started
    try:
        w_pat = files["Patient"].write
        w_imm = files["Immunization"].write
        w_obs = files["Observation"].write
        w_cond = files["Condition"].write
        n_imm = n_obs = n_cond = 0
        q_written = 0
        for n in range(1, patients + 1):
            patient, facts = pop.patient(n)
            w_pat(dumps(patient) + "\n")
            for r in pop.immunizations(n, facts):
                w_imm(dumps(r) + "\n")
                n_imm += 1
            for r in pop.observations(n, facts):
                w_obs(dumps(r) + "\n")
                n_obs += 1
            for r in pop.conditions(n, facts):
                w_cond(dumps(r) + "\n")
                n_cond += 1
            if step and (n - 1) % step == 0 and q_written < query_lines:
                q_written += 1
                q_ident.write(f"{CCCD_SYSTEM}|{facts['cccd']}\n")
                q_family.write(f"{facts['family']}\t{facts['birthDate']}\n")
                q_ids.write(f"{facts['id']}\n")
            if progress and n % 50_000 == 0:
                now = time.monotonic()
                if now - last >= 10:
                    last = now
                    print(f"  {n:,} patients, {n / (now - started):,.0f}/s", file=sys.stderr,
                          flush=True)
        counts.update(Patient=patients, Immunization=n_imm, Observation=n_obs,
                      Condition=n_cond)
    finally:
        for f in (*files.values(), q_ident, q_family, q_ids):
            f.close()
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patients", type=int, required=True, help="number of Patients")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--out", required=True, help="output folder (created if missing)")
    ap.add_argument("--query-lines", type=int, default=10_000,
                    help="maximum lines of each queries/ file (default 10000)")
    args = ap.parse_args(argv)
    if args.patients < 1:
        ap.error("--patients must be at least 1")
    if args.seed < 0:
        ap.error("--seed must be >= 0")
    started = time.monotonic()
    counts = generate(args.patients, args.seed, args.out, args.query_lines, progress=True)
    elapsed = time.monotonic() - started
    total = sum(counts.values())
    print(f"wrote {args.out} (seed {args.seed}) in {elapsed:.1f} s:")
    for t in RESOURCE_TYPES:
        print(f"  {t:<13} {counts[t]:>10,}  {t}.ndjson")
    print(f"  {'total':<13} {total:>10,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
