//! The Vietnamese profiles (fhir-profiles/vn/): VN Core Patient and VN Immunization, with
//! the rules FHIRPath cannot express. Facts: shared/vn/README.md; rules and codes:
//! docs/VALIDATION.md.
//!
//! Identifier systems (VN Core Patient's slices):
//! - CCCD (12-digit citizen identity number): [`CCCD`]
//! - health insurance card (BHYT): [`BHYT`]
//! - personal health QR token: [`HEALTH_QR`]

use chrono::{FixedOffset, NaiveDate, TimeZone};
use serde_json::Value;

use super::{Issue, VnCore, PROFILE_BASE};
use crate::service::index::date;

/// The CCCD identifier system.
pub const CCCD: &str = "https://healthbook.example.org/fhir/sid/cccd";
/// The health insurance (BHYT) card number system.
pub const BHYT: &str = "https://healthbook.example.org/fhir/sid/bhyt";
/// The personal health QR token system.
pub const HEALTH_QR: &str = "https://healthbook.example.org/fhir/sid/health-qr";
const CVX: &str = "http://hl7.org/fhir/sid/cvx";

/// Province and city codes (digits 1-3 of a CCCD), the 63 before the 2025 merger.
const PROVINCES: [&str; 63] = [
    "001", "002", "004", "006", "008", "010", "011", "012", "014", "015", "017", "019", "020",
    "022", "024", "025", "026", "027", "030", "031", "033", "034", "035", "036", "037", "038",
    "040", "042", "044", "045", "046", "048", "049", "051", "052", "054", "056", "058", "060",
    "062", "064", "066", "067", "068", "070", "072", "074", "075", "077", "079", "080", "082",
    "083", "084", "086", "087", "089", "091", "092", "093", "094", "095", "096",
];

/// Mobile prefixes after the leading 0 (the 2018 renumbering: 03x, 05x, 07x, 08x, 09x as
/// allocated).
const MOBILE_PREFIXES: [&str; 37] = [
    "32", "33", "34", "35", "36", "37", "38", "39", "52", "55", "56", "58", "59", "70", "76", "77",
    "78", "79", "81", "82", "83", "84", "85", "86", "87", "88", "89", "90", "91", "92", "93", "94",
    "95", "96", "97", "98", "99",
];

/// The allocated mobile prefixes as the messages name them: `032-039, 052, 055, ...`
/// (runs of consecutive prefixes joined), so that a message never says more or less than
/// the rule checks.
fn mobile_prefixes_text() -> String {
    let numbers: Vec<u32> = MOBILE_PREFIXES
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for n in numbers {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == n => *end = n,
            _ => runs.push((n, n)),
        }
    }
    runs.iter()
        .map(|&(a, b)| {
            if a == b {
                format!("0{a}")
            } else {
                format!("0{a}-0{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A Vietnamese profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Patient,
    Immunization,
}

impl Profile {
    /// The StructureDefinition id (and policy key).
    pub fn id(self) -> &'static str {
        match self {
            Profile::Patient => "vn-core-patient",
            Profile::Immunization => "vn-immunization",
        }
    }

    /// The canonical URL.
    pub fn url(self) -> String {
        format!("{PROFILE_BASE}{}", self.id())
    }

    /// Adds the profile's issues about `resource` to `out`.
    pub fn check(self, resource: &Value, now_ms: i64, offset: FixedOffset, out: &mut Vec<Issue>) {
        match self {
            Profile::Patient => patient(resource, out),
            Profile::Immunization => immunization(resource, now_ms, offset, out),
        }
    }
}

/// The profiles Healthbook ships for `res_type`.
pub fn profiles_for(res_type: &str) -> &'static [Profile] {
    match res_type {
        "Patient" => &[Profile::Patient],
        "Immunization" => &[Profile::Immunization],
        _ => &[],
    }
}

/// The profiles that apply to `resource`: by type when VN Core applies to all, else the
/// ones it names in `meta.profile`.
pub fn profiles_of(resource: &Value, vn_core: VnCore) -> Vec<Profile> {
    let profile = match resource.get("resourceType").and_then(Value::as_str) {
        Some("Patient") => Profile::Patient,
        Some("Immunization") => Profile::Immunization,
        _ => return Vec::new(),
    };
    let declared = resource
        .pointer("/meta/profile")
        .and_then(Value::as_array)
        .is_some_and(|p| {
            p.iter()
                .filter_map(Value::as_str)
                .any(|u| u.split('|').next() == Some(profile.url().as_str()))
        });
    if vn_core == VnCore::All || declared {
        vec![profile]
    } else {
        Vec::new()
    }
}

fn list<'a>(r: &'a Value, name: &str) -> &'a [Value] {
    r.get(name)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn text<'a>(r: &'a Value, name: &str) -> Option<&'a str> {
    r.get(name).and_then(Value::as_str)
}

fn patient(r: &Value, out: &mut Vec<Issue>) {
    let named = list(r, "name").iter().any(|n| {
        text(n, "family").is_some_and(|f| !f.trim().is_empty()) && !list(n, "given").is_empty()
    });
    if !named {
        out.push(Issue::error(
            "required",
            "VN-PAT-NAME",
            "Patient.name",
            "The patient's name needs a family name and a given name.",
            "Tên người bệnh cần có họ và tên.",
        ));
    }
    let gender = text(r, "gender");
    if gender.is_none() {
        out.push(Issue::error(
            "required",
            "VN-PAT-GENDER",
            "Patient.gender",
            "The patient's sex (gender) is required.",
            "Thiếu giới tính của người bệnh (gender).",
        ));
    }
    let birth_year = text(r, "birthDate").and_then(|d| d.get(..4)?.parse::<u32>().ok());
    if text(r, "birthDate").is_none() {
        out.push(Issue::error(
            "required",
            "VN-PAT-BIRTHDATE",
            "Patient.birthDate",
            "The patient's date of birth is required.",
            "Thiếu ngày sinh của người bệnh.",
        ));
    }
    for (i, identifier) in list(r, "identifier").iter().enumerate() {
        let at = format!("Patient.identifier[{i}].value");
        let value = text(identifier, "value").unwrap_or_default();
        match text(identifier, "system") {
            Some(CCCD) => cccd(value, gender, birth_year, &at, out),
            Some(BHYT) => {
                let b = value.as_bytes();
                let valid = b.len() == 15
                    && b[..2].iter().all(u8::is_ascii_uppercase)
                    && b[2..].iter().all(u8::is_ascii_digit);
                if !valid {
                    out.push(Issue::error(
                        "value",
                        "VN-BHYT-FORMAT",
                        at,
                        "A health insurance (BHYT) card number is 2 capital letters and 13 digits.",
                        "Mã thẻ BHYT gồm 2 chữ cái in hoa và 13 chữ số.",
                    ));
                }
            }
            _ => {}
        }
    }
    for (i, telecom) in list(r, "telecom").iter().enumerate() {
        if text(telecom, "system") != Some("phone") {
            continue;
        }
        let at = format!("Patient.telecom[{i}].value");
        let number = text(telecom, "value").unwrap_or_default();
        let national = national_number(number);
        let mobile = national.as_deref().is_some_and(is_mobile);
        if text(telecom, "use") == Some("mobile") && !mobile {
            let prefixes = mobile_prefixes_text();
            out.push(Issue::error(
                "value",
                "VN-PHONE-MOBILE",
                at,
                format!("This number is marked as a mobile phone but is not a Vietnamese mobile number: 10 digits from 0 (or +84 and 9 digits) with an allocated mobile prefix ({prefixes})."),
                format!("Số này được ghi là di động nhưng không phải số di động Việt Nam: 10 chữ số bắt đầu bằng 0 (hoặc +84 và 9 chữ số) với đầu số di động đã cấp ({prefixes})."),
            ));
        } else if !mobile && !national.as_deref().is_some_and(is_landline) {
            out.push(Issue::error(
                "value",
                "VN-PHONE-FORMAT",
                at,
                format!("This is not a Vietnamese phone number: a mobile is 10 digits from 0 (or +84 and 9 digits) with an allocated mobile prefix ({}); a landline is 0, an area code starting with 2, then the number (11 digits).", mobile_prefixes_text()),
                format!("Số điện thoại không đúng định dạng Việt Nam: số di động là 10 chữ số bắt đầu bằng 0 (hoặc +84 và 9 chữ số) với đầu số di động đã cấp ({}); số cố định là 0, mã vùng bắt đầu bằng 2, rồi số thuê bao (11 chữ số).", mobile_prefixes_text()),
            ));
        }
    }
}

/// The CCCD rules: 12 digits, a real province, digit 4 agreeing with sex and century of
/// birth, digits 5-6 with the year of birth.
fn cccd(
    value: &str,
    gender: Option<&str>,
    birth_year: Option<u32>,
    at: &str,
    out: &mut Vec<Issue>,
) {
    if value.len() != 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
        out.push(Issue::error(
            "value",
            "VN-CCCD-FORMAT",
            at,
            "A citizen identity number (CCCD) has exactly 12 digits.",
            "Số căn cước công dân (CCCD) phải có đúng 12 chữ số.",
        ));
        return;
    }
    let province = &value[..3];
    if !PROVINCES.contains(&province) {
        out.push(Issue::error(
            "value",
            "VN-CCCD-PROVINCE",
            at,
            format!("The CCCD starts with {province}, which is not a province or city code."),
            format!("Số CCCD bắt đầu bằng {province}, không phải mã tỉnh/thành phố."),
        ));
    }
    let d4 = u32::from(value.as_bytes()[3] - b'0');
    let female = d4 % 2 == 1;
    let century = 1900 + (d4 / 2) * 100;
    match (gender, female) {
        (Some("male"), true) | (Some("female"), false) => {
            let (en_sex, vi_sex) = if female {
                ("female", "nữ")
            } else {
                ("male", "nam")
            };
            out.push(Issue::error(
                "value",
                "VN-CCCD-SEX",
                at,
                format!("Digit 4 of the CCCD ({d4}) is for a {en_sex} citizen, but the patient's gender is {}. Check the sex or the CCCD.", gender.unwrap_or_default()),
                format!("Chữ số thứ 4 của CCCD ({d4}) dành cho công dân {vi_sex}, nhưng giới tính ghi là {}. Hãy kiểm tra lại giới tính hoặc số CCCD.", if female { "nam" } else { "nữ" }),
            ));
        }
        _ => {}
    }
    if let Some(year) = birth_year {
        if year / 100 * 100 != century {
            out.push(Issue::error(
                "value",
                "VN-CCCD-CENTURY",
                at,
                format!("Digit 4 of the CCCD ({d4}) is for someone born in {century}-{}, but the date of birth is in {year}.", century + 99),
                format!("Chữ số thứ 4 của CCCD ({d4}) dành cho người sinh từ {century} đến {}, nhưng năm sinh là {year}.", century + 99),
            ));
        }
        let yy = &value[4..6];
        if yy != format!("{:02}", year % 100) {
            out.push(Issue::error(
                "value",
                "VN-CCCD-YEAR",
                at,
                format!("Digits 5-6 of the CCCD ({yy}) are the year of birth, but the date of birth is in {year}."),
                format!("Chữ số thứ 5-6 của CCCD ({yy}) là năm sinh, nhưng năm sinh ghi là {year}."),
            ));
        }
    }
}

/// The number as 0 followed by its national digits (spaces, dots, dashes and brackets
/// removed; +84 read as 0); `None` when it holds anything else.
fn national_number(number: &str) -> Option<String> {
    let kept: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
        .collect();
    let digits = match kept.strip_prefix("+84") {
        Some(rest) => format!("0{rest}"),
        None => kept,
    };
    (digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

fn is_mobile(national: &str) -> bool {
    national.len() == 10 && MOBILE_PREFIXES.contains(&&national[1..3])
}

fn is_landline(national: &str) -> bool {
    national.len() == 11 && national.as_bytes()[1] == b'2'
}

fn immunization(r: &Value, now_ms: i64, offset: FixedOffset, out: &mut Vec<Issue>) {
    let vaccines = fhir_profiles::covid_vaccines();
    let product = r
        .pointer("/vaccineCode/coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| text(c, "system") == Some(CVX))
        .find_map(|c| {
            vaccines
                .iter()
                .find(|v| Some(v.cvx.as_str()) == text(c, "code"))
        });
    if product.is_none() {
        out.push(Issue::error(
            "code-invalid",
            "VN-IMM-VACCINE",
            "Immunization.vaccineCode",
            "The vaccine must be coded (CVX, http://hl7.org/fhir/sid/cvx) as one of the COVID-19 vaccines of the campaign.",
            "Vắc xin phải được mã hóa theo CVX (http://hl7.org/fhir/sid/cvx) là một trong các vắc xin COVID-19 của chiến dịch.",
        ));
    }
    if text(r, "lotNumber").is_none_or(|l| l.trim().is_empty()) {
        out.push(Issue::error(
            "required",
            "VN-IMM-LOT",
            "Immunization.lotNumber",
            "The vaccine lot number is required.",
            "Thiếu số lô vắc xin.",
        ));
    }
    if let Some(when) = text(r, "occurrenceDateTime").and_then(|d| date::range(d, offset)) {
        if when.lo > now_ms {
            out.push(Issue::error(
                "value",
                "VN-IMM-FUTURE",
                "Immunization.occurrence",
                "The vaccination date is in the future.",
                "Ngày tiêm chủng nằm ở tương lai.",
            ));
        } else if let Some(v) = product {
            let first = NaiveDate::parse_from_str(&v.first_authorised, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .and_then(|d| offset.from_local_datetime(&d).single())
                .map(|d| d.timestamp_millis());
            if first.is_some_and(|first| when.hi < first) {
                out.push(Issue::error(
                    "value",
                    "VN-IMM-TOO-EARLY",
                    "Immunization.occurrence",
                    format!(
                        "The vaccination date is before {} was first authorised ({}).",
                        v.name, v.first_authorised
                    ),
                    format!(
                        "Ngày tiêm trước ngày vắc xin {} được cấp phép lần đầu ({}).",
                        v.name, v.first_authorised
                    ),
                ));
            }
        }
    }
    if r.pointer("/patient/reference")
        .and_then(Value::as_str)
        .is_none_or(|p| {
            !(p.starts_with("Patient/") || p.contains("/Patient/") || p.starts_with("urn:"))
        })
    {
        out.push(Issue::error(
            "required",
            "VN-IMM-PATIENT",
            "Immunization.patient",
            "The vaccinated person must be given as a reference to their Patient record.",
            "Người được tiêm phải được ghi bằng tham chiếu đến hồ sơ Patient của họ.",
        ));
    }
    if list(r, "performer").is_empty() && r.get("location").is_none() {
        out.push(Issue::error(
            "required",
            "VN-IMM-PERFORMER",
            "Immunization.performer",
            "Say who gave the vaccine (performer) or where (location).",
            "Cần ghi người tiêm (performer) hoặc nơi tiêm (location).",
        ));
    }
    for (i, applied) in list(r, "protocolApplied").iter().enumerate() {
        let at = format!("Immunization.protocolApplied[{i}].doseNumber");
        let dose = applied
            .get("doseNumberPositiveInt")
            .and_then(Value::as_i64)
            .or_else(|| text(applied, "doseNumberString").and_then(|s| s.trim().parse().ok()));
        let series = applied
            .get("seriesDosesPositiveInt")
            .and_then(Value::as_i64);
        match (dose, series) {
            (None, _) | (Some(..=0), _) => out.push(Issue::error(
                "value",
                "VN-IMM-DOSE",
                at,
                "The dose number is a whole number, 1 or more.",
                "Số thứ tự mũi tiêm phải là số nguyên từ 1 trở lên.",
            )),
            (Some(d), Some(s)) if d > s => out.push(Issue::error(
                "value",
                "VN-IMM-DOSE-SERIES",
                at,
                format!("Dose {d} cannot belong to a series of {s} doses."),
                format!("Mũi thứ {d} không thể thuộc phác đồ {s} mũi."),
            )),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(profile: Profile, resource: Value) -> Vec<&'static str> {
        let mut out = Vec::new();
        let now = chrono::Utc::now().timestamp_millis();
        profile.check(
            &resource,
            now,
            FixedOffset::east_opt(7 * 3600).unwrap(),
            &mut out,
        );
        out.into_iter().map(|i| i.rule).collect()
    }

    fn person(cccd: &str, gender: &str, birth: &str, phone: &str, use_: &str) -> Value {
        json!({"resourceType": "Patient", "name": [{"family": "Nguyễn", "given": ["An"]}],
            "gender": gender, "birthDate": birth,
            "identifier": [{"system": CCCD, "value": cccd}],
            "telecom": [{"system": "phone", "value": phone, "use": use_}]})
    }

    #[test]
    fn cccd_agrees_with_sex_and_birth() {
        assert!(rules(
            Profile::Patient,
            person("001090012345", "male", "1990-02-14", "0912345678", "mobile")
        )
        .is_empty());
        assert!(rules(
            Profile::Patient,
            person(
                "079301012345",
                "female",
                "2001-05-01",
                "+84 912 345 678",
                "mobile"
            )
        )
        .is_empty());
        assert_eq!(
            rules(
                Profile::Patient,
                person("001190012345", "male", "1990-02-14", "0912345678", "mobile")
            ),
            ["VN-CCCD-SEX"]
        );
        assert_eq!(
            rules(
                Profile::Patient,
                person("001091012345", "male", "1990-02-14", "0912345678", "mobile")
            ),
            ["VN-CCCD-YEAR"]
        );
        assert_eq!(
            rules(
                Profile::Patient,
                person("001290012345", "male", "1990-02-14", "0912345678", "mobile")
            ),
            ["VN-CCCD-CENTURY"]
        );
        assert_eq!(
            rules(
                Profile::Patient,
                person("003090012345", "male", "1990-02-14", "0912345678", "mobile")
            ),
            ["VN-CCCD-PROVINCE"]
        );
        assert_eq!(
            rules(
                Profile::Patient,
                person("00109001234", "male", "1990-02-14", "0912345678", "mobile")
            ),
            ["VN-CCCD-FORMAT"]
        );
    }

    #[test]
    fn phones() {
        let base = |phone: &str, use_: &str| {
            rules(
                Profile::Patient,
                person("001090012345", "male", "1990-02-14", phone, use_),
            )
        };
        assert_eq!(
            base("02438251234", "mobile"),
            ["VN-PHONE-MOBILE"],
            "a landline where a mobile is needed"
        );
        assert!(base("02438251234", "home").is_empty());
        assert_eq!(base("0112345678", "home"), ["VN-PHONE-FORMAT"]);
        assert_eq!(base("+1 415 555 0100", "home"), ["VN-PHONE-FORMAT"]);
        assert!(base("+84-86-123-4567", "mobile").is_empty());
        // 050 is in the 05x range but not allocated: refused, and the message's list of
        // prefixes, which is made from the rule's, says so.
        assert_eq!(base("0501234567", "mobile"), ["VN-PHONE-MOBILE"]);
        assert_eq!(
            mobile_prefixes_text(),
            "032-039, 052, 055-056, 058-059, 070, 076-079, 081-099"
        );
        for prefix in MOBILE_PREFIXES {
            assert!(
                base(&format!("0{prefix}1234567"), "mobile").is_empty(),
                "0{prefix}"
            );
        }
    }

    #[test]
    fn doses() {
        let shot = |date: &str, lot: Option<&str>, dose: i64, series: i64| {
            let mut r = json!({"resourceType": "Immunization", "status": "completed",
                "vaccineCode": {"coding": [{"system": CVX, "code": "208"}]},
                "patient": {"reference": "Patient/1"}, "occurrenceDateTime": date,
                "location": {"reference": "Location/1"},
                "protocolApplied": [{"doseNumberPositiveInt": dose, "seriesDosesPositiveInt": series}]});
            if let Some(l) = lot {
                r["lotNumber"] = json!(l);
            }
            rules(Profile::Immunization, r)
        };
        assert!(shot("2021-08-01", Some("FF1234"), 1, 2).is_empty());
        assert_eq!(shot("2099-01-01", Some("FF1234"), 1, 2), ["VN-IMM-FUTURE"]);
        assert_eq!(
            shot("2020-06-01", Some("FF1234"), 1, 2),
            ["VN-IMM-TOO-EARLY"]
        );
        assert_eq!(shot("2021-08-01", None, 1, 2), ["VN-IMM-LOT"]);
        assert_eq!(
            shot("2021-08-01", Some("FF1234"), 3, 2),
            ["VN-IMM-DOSE-SERIES"]
        );
        let unknown = rules(
            Profile::Immunization,
            json!({"resourceType": "Immunization",
            "vaccineCode": {"coding": [{"system": CVX, "code": "08"}]}, "patient": {"display": "An"},
            "occurrenceDateTime": "2021-08-01", "lotNumber": "x"}),
        );
        assert_eq!(
            unknown,
            ["VN-IMM-VACCINE", "VN-IMM-PATIENT", "VN-IMM-PERFORMER"]
        );
    }
}
