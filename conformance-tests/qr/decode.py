#!/usr/bin/env python3
"""Decodes the personal QR images of tests/qr_scan.rs with two independent decoders
(zbarimg of Debian's zbar-tools, and zxing-cpp), as rendered and after what a phone camera
does to them, and prints the results as JSON.

    decode.py DIR        # DIR/manifest.json: {"file.png": "expected payload", ...}

SVG files are rasterised with rsvg-convert first (at their own pixel size). Each image is
decoded as it is ("as rendered"), and after each degradation of a camera capture: the code
resampled to 400 px across (bilinear: a camera's sensor, not a copy of the pixels), then
rotated, blurred, noisy, low in contrast, JPEG-compressed, or small as a printed card seen
from arm's length; and, reported but not required, harsher noise and compression than a
phone delivers. Output: {"rates": {degradation: {decoder: [ok, total]}}, "failures":
[[file, degradation, decoder, got], ...]}.
"""
import io
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import zxingcpp
from PIL import Image, ImageFilter


def capture(img):
    return img.convert("L").resize((400, 400), Image.BILINEAR)


def rotate(angle):
    return lambda img: capture(img).rotate(angle, resample=Image.BILINEAR, expand=True, fillcolor=255)


def blur(img):
    return capture(img).filter(ImageFilter.GaussianBlur(2))


def noise(sigma):
    def apply(img):
        a = np.asarray(capture(img), dtype=np.float64)
        rng = np.random.default_rng(7)
        a = a + rng.normal(0, sigma, a.shape)
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    return apply


def low_contrast(img):
    a = np.asarray(capture(img), dtype=np.float64)
    return Image.fromarray((90 + a * (170 - 90) / 255).astype(np.uint8))


def jpeg(quality):
    def apply(img):
        buf = io.BytesIO()
        capture(img).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        return Image.open(buf).convert("L")
    return apply


def printed_card(img):
    # A 2 cm code on a card, photographed at about 3 pixels per module.
    return img.convert("L").resize((110, 110), Image.BILINEAR)


DEGRADATIONS = {
    "as rendered": lambda img: img.convert("L"),
    "rotated 15°": rotate(15),
    "rotated 90°": rotate(90),
    "rotated 180°": rotate(180),
    "blur σ=2": blur,
    "noise σ=8": noise(8),
    "contrast 90..170": low_contrast,
    "JPEG q=50": jpeg(50),
    "printed card (110 px)": printed_card,
}

# Harsher than a phone delivers: decoded and reported, not required.
STRESS = {
    "noise σ=12 (stress)": noise(12),
    "noise σ=25 (stress)": noise(25),
    "JPEG q=20 (stress)": jpeg(20),
}


def zbar(path):
    out = subprocess.run(["zbarimg", "--raw", "-q", "-Sdisable", "-Sqrcode.enable", path],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def zxing(img):
    found = zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)
    return found[0].text if found else None


def main():
    folder = sys.argv[1]
    manifest = json.load(open(os.path.join(folder, "manifest.json")))
    rates, failures = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for name, expected in sorted(manifest.items()):
            path = os.path.join(folder, name)
            if name.endswith(".svg"):
                png = os.path.join(tmp, name + ".png")
                subprocess.run(["rsvg-convert", "-o", png, path], check=True)
                path = png
            source = Image.open(path)
            for degradation, apply in {**DEGRADATIONS, **STRESS}.items():
                img = apply(source)
                shot = os.path.join(tmp, "shot.png")
                img.save(shot)
                for decoder, got in (("zbarimg", zbar(shot)), ("zxing-cpp", zxing(img))):
                    ok, total = rates.setdefault(degradation, {}).setdefault(decoder, [0, 0])
                    rates[degradation][decoder] = [ok + (got == expected), total + 1]
                    if got != expected and degradation in DEGRADATIONS:
                        failures.append([name, degradation, decoder, got])
    json.dump({"rates": rates, "failures": failures}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
