//! Canonical units for common UCUM codes (search.html#quantity: a server "SHOULD" compare
//! quantities in canonical units). Each code maps to a base unit and a factor; a quantity
//! is indexed as written and, where the code is known, in its base unit as well, and a
//! search in a known unit is converted the same way. Source: the UCUM specification
//! (https://ucum.org/ucum), base units g, m, L, s, mol/L, g/L, Cel.

/// The UCUM code system URI.
pub const SYSTEM: &str = "http://unitsofmeasure.org";

/// `value` in `code` expressed in its canonical unit: `(value, canonical code)`.
pub fn canonical(value: f64, code: &str) -> Option<(f64, &'static str)> {
    let (factor, base) = match code {
        "ug" => (1e-6, "g"),
        "mg" => (1e-3, "g"),
        "g" => (1.0, "g"),
        "kg" => (1e3, "g"),
        "[lb_av]" => (453.592_37, "g"),
        "[oz_av]" => (28.349_523_125, "g"),
        "mm" => (1e-3, "m"),
        "cm" => (1e-2, "m"),
        "m" => (1.0, "m"),
        "[in_i]" => (0.0254, "m"),
        "[ft_i]" => (0.3048, "m"),
        "uL" => (1e-6, "L"),
        "mL" => (1e-3, "L"),
        "dL" => (1e-1, "L"),
        "L" => (1.0, "L"),
        "ms" => (1e-3, "s"),
        "s" => (1.0, "s"),
        "min" => (60.0, "s"),
        "h" => (3600.0, "s"),
        "d" => (86_400.0, "s"),
        "wk" => (604_800.0, "s"),
        "mmol/L" => (1e-3, "mol/L"),
        "umol/L" => (1e-6, "mol/L"),
        "mol/L" => (1.0, "mol/L"),
        "mg/dL" => (1e-2, "g/L"),
        "g/dL" => (10.0, "g/L"),
        "mg/L" => (1e-3, "g/L"),
        "g/L" => (1.0, "g/L"),
        _ => return None,
    };
    Some((value * factor, base))
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn converts_to_the_base_unit() {
        assert_eq!(canonical(70.0, "kg"), Some((70_000.0, "g")));
        assert_eq!(canonical(5.0, "mmol/L"), Some((0.005, "mol/L")));
        assert_eq!(canonical(1.0, "furlong"), None);
    }
}
