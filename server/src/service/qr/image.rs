//! The personal QR as an image a phone or a printer shows: error correction M (15% of the
//! code may be damaged), the payload in alphanumeric mode (a version 2 code, 25 × 25
//! modules), a 4-module quiet zone, black on white, `size` pixels per module.

use qrcode::{Color, EcLevel, QrCode};

/// Smallest and largest pixels per module a request may ask for.
pub const MODULE_PIXELS: std::ops::RangeInclusive<u32> = 1..=40;

/// The default pixels per module (a 264-pixel code).
pub const DEFAULT_MODULE_PIXELS: u32 = 8;

/// Modules of white around the code (ISO/IEC 18004: at least 4).
const QUIET_ZONE: usize = 4;

/// The modules of the code of `payload`, dark as `true`, with the quiet zone.
fn modules(payload: &str) -> (Vec<bool>, usize) {
    // An alphanumeric payload of 31 characters always fits (version 2-M holds 38).
    let code = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M)
        .expect("a personal QR payload fits a QR code");
    let width = code.width();
    let side = width + 2 * QUIET_ZONE;
    let mut dark = vec![false; side * side];
    for (i, color) in code.to_colors().into_iter().enumerate() {
        if color == Color::Dark {
            let (y, x) = (i / width, i % width);
            dark[(y + QUIET_ZONE) * side + x + QUIET_ZONE] = true;
        }
    }
    (dark, side)
}

/// The code as a PNG (8-bit grayscale).
pub fn png(payload: &str, module_pixels: u32) -> Vec<u8> {
    let (dark, side) = modules(payload);
    let scale = module_pixels as usize;
    let pixels = side * scale;
    let mut image = vec![255u8; pixels * pixels];
    for (i, _) in dark.iter().enumerate().filter(|(_, d)| **d) {
        let (y, x) = (i / side, i % side);
        for row in y * scale..(y + 1) * scale {
            image[row * pixels + x * scale..row * pixels + (x + 1) * scale].fill(0);
        }
    }
    let mut out = Vec::new();
    let side_px = u32::try_from(pixels).expect("a small image");
    let mut encoder = png::Encoder::new(&mut out, side_px, side_px);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("writing to memory");
    writer
        .write_image_data(&image)
        .expect("an image of the declared size");
    writer.finish().expect("writing to memory");
    out
}

/// The code as SVG: one path of unit squares, scaled to `module_pixels` per module, with
/// `shape-rendering="crispEdges"` so that rasterisers keep the edges sharp.
pub fn svg(payload: &str, module_pixels: u32) -> String {
    let (dark, side) = modules(payload);
    let mut path = String::new();
    for (i, _) in dark.iter().enumerate().filter(|(_, d)| **d) {
        let (y, x) = (i / side, i % side);
        path.push_str(&format!("M{x} {y}h1v1h-1z"));
    }
    let pixels = side * module_pixels as usize;
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?><svg xmlns="http://www.w3.org/2000/svg" width="{pixels}" height="{pixels}" viewBox="0 0 {side} {side}" shape-rendering="crispEdges"><rect width="{side}" height="{side}" fill="#fff"/><path fill="#000" d="{path}"/></svg>"##
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_2_code_with_its_quiet_zone() {
        let payload = "HB1:5MPFHC4S271KHFPAGHZPRD1HH9F";
        let (dark, side) = modules(payload);
        assert_eq!(side, 25 + 8, "version 2 (25 modules) and two quiet zones");
        // The quiet zone is white; the finder pattern's corner is dark.
        assert!(dark[..side * QUIET_ZONE].iter().all(|d| !d));
        assert!(dark[QUIET_ZONE * side + QUIET_ZONE]);
        let png = png(payload, 3);
        assert_eq!(&png[1..4], b"PNG");
        assert!(svg(payload, 3).contains(r#"width="99""#));
    }
}
