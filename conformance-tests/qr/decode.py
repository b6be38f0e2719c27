#!/usr/bin/env python3
"""Decodes the personal QR images of tests/qr_scan.rs with two independent decoders
(zbarimg of Debian's zbar-tools, and zxing-cpp), as rendered and after what a phone camera
does to them, and prints the results as JSON.

    decode.py DIR        # DIR/manifest.json: {"file.png": "expected payload", ...}

SVG files are rasterised with rsvg-convert first (at their own pixel size). Each image is
decoded as it is ("as rendered"), and after each degradation of a camera capture: the code
resampled to about 400 px across (bilinear: a camera's sensor, not a copy of the pixels),
then rotated, blurred, noisy, low in contrast, JPEG-compressed, or small as a printed card
seen from arm's length; and, reported but not required, harsher noise and compression than a
phone delivers. A scanner decodes a video stream, not one picture: each capture is taken as
three consecutive frames of a hand-held phone (the code 400, 412 and 388 px across), and the
decoder reads frame after frame until one decodes, as a scanner does; the code is read when
that decode is its exact payload (a decode to anything else is a failure). Output: {"rates": {degradation: {decoder: [ok, total]}}
(read within the three frames), "single_frame": (the same for the first frame alone),
"failures": [[file, degradation, decoder, got], ...]}.
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


# The code's width in pixels in three consecutive frames (the phone moves a little).
FRAMES = (400, 412, 388)


def capture(img, px):
    return img.convert("L").resize((px, px), Image.BILINEAR)


def rotate(angle):
    return lambda img, px: capture(img, px).rotate(angle, resample=Image.BILINEAR, expand=True, fillcolor=255)


def blur(img, px):
    return capture(img, px).filter(ImageFilter.GaussianBlur(2))


def noise(sigma):
    def apply(img, px):
        a = np.asarray(capture(img, px), dtype=np.float64)
        rng = np.random.default_rng(7)
        a = a + rng.normal(0, sigma, a.shape)
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    return apply


def low_contrast(img, px):
    a = np.asarray(capture(img, px), dtype=np.float64)
    return Image.fromarray((90 + a * (170 - 90) / 255).astype(np.uint8))


def jpeg(quality):
    def apply(img, px):
        buf = io.BytesIO()
        capture(img, px).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        return Image.open(buf).convert("L")
    return apply


def printed_card(img, px):
    # A 2 cm code on a card, photographed at about 3 pixels per module.
    side = px * 110 // 400
    return img.convert("L").resize((side, side), Image.BILINEAR)


DEGRADATIONS = {
    "as rendered": lambda img, px: img.convert("L"),
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


def zbar(img, tmp):
    path = os.path.join(tmp, "shot.png")
    img.save(path)
    out = subprocess.run(["zbarimg", "--raw", "-q", "-Sdisable", "-Sqrcode.enable", path],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def zxing(img, _tmp=None):
    found = zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)
    return found[0].text if found else None


def count(table, degradation, decoder, ok):
    hits, total = table.setdefault(degradation, {}).setdefault(decoder, [0, 0])
    table[degradation][decoder] = [hits + ok, total + 1]


def main():
    folder = sys.argv[1]
    manifest = json.load(open(os.path.join(folder, "manifest.json")))
    rates, single, failures = {}, {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for name, expected in sorted(manifest.items()):
            path = os.path.join(folder, name)
            if name.endswith(".svg"):
                png = os.path.join(tmp, name + ".png")
                subprocess.run(["rsvg-convert", "-o", png, path], check=True)
                path = png
            source = Image.open(path)
            for degradation, apply in {**DEGRADATIONS, **STRESS}.items():
                frames = [apply(source, px) for px in FRAMES]
                for decoder, read in (("zbarimg", zbar), ("zxing-cpp", zxing)):
                    # Frame after frame until one is read, as a scanner does.
                    got = None
                    for i, img in enumerate(frames):
                        got = read(img, tmp)
                        if i == 0:
                            count(single, degradation, decoder, got == expected)
                        if got is not None:
                            break
                    ok = got == expected
                    count(rates, degradation, decoder, ok)
                    if not ok and degradation in DEGRADATIONS:
                        failures.append([name, degradation, decoder, got])
    json.dump({"rates": rates, "single_frame": single, "failures": failures}, sys.stdout,
              ensure_ascii=False)


if __name__ == "__main__":
    main()
