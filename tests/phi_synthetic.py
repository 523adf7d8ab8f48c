"""A synthetic burned-in PHI corpus: real images with made-up names, dates, times and IDs drawn in.

Used by the tests and `bench/phi_bench.py` to measure text detection recall and PHI flagging.
Every value is invented from the lists below; variants cycle through fonts (PIL's default and
matplotlib's bundled DejaVu faces), sizes, contrasts (high, medium, low; colour on RGB images;
with and without a label box) and positions (the four corners, edges and over the anatomy).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FIRST = ["John", "Maria", "Ahmed", "Li", "Olga", "Pierre", "Aisha", "Kenji", "Sofia", "Peter", "Fatima", "Lucas"]
LAST = ["Smith", "Garcia", "Khan", "Wang", "Petrova", "Dubois", "Okafor", "Tanaka", "Rossi", "Novak", "Haddad", "Silva"]
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
KINDS = ("name", "date", "id", "time")
SIZES = (12, 15, 19, 24, 30)
POSITIONS = ("top_left", "top_right", "bottom_left", "bottom_right", "centre", "top_centre", "bottom_centre")
CONTRASTS = ("high", "medium", "low", "label_box", "colour")
#: bundled images that really carry burned-in annotations (institution name, time): not "clean"
KNOWN_TEXT_IMAGES = ("pydicom_dicom/US1_UNCR.dcm",)


@dataclass(frozen=True)
class Planted:
    text: str
    kind: str
    box: tuple[int, int, int, int]  # inclusive pixel bounds of the drawn glyphs
    font: str
    size: int
    contrast: str
    position: str


@dataclass
class SyntheticImage:
    name: str
    base: str
    pixels: np.ndarray
    planted: list[Planted]


@lru_cache(maxsize=1)
def font_names() -> tuple[str, ...]:
    """'default' (PIL's bundled font) plus the DejaVu faces bundled with matplotlib, when present."""
    names = ["default"]
    try:
        import matplotlib

        folder = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
        for face in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSerif.ttf"):
            if os.path.isfile(os.path.join(folder, face)):
                names.append(os.path.join(folder, face))
    except ImportError:
        pass
    return tuple(names)


@lru_cache(maxsize=64)
def load_font(name: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size) if name == "default" else ImageFont.truetype(name, size)


def fake_value(kind: str, rng: np.random.Generator) -> str:
    """An invented value of a kind, in one of several common layouts."""
    first, last = FIRST[rng.integers(len(FIRST))], LAST[rng.integers(len(LAST))]
    d, m, y = int(rng.integers(1, 29)), int(rng.integers(1, 13)), int(rng.integers(1940, 2025))
    hh, mm, ss = int(rng.integers(0, 24)), int(rng.integers(0, 60)), int(rng.integers(0, 60))
    choices = {
        "name": [f"{last.upper()}^{first.upper()}", f"{first} {last}", f"{last.upper()}, {first.upper()}", f"Pt: {first} {last}"],
        "date": [f"{d:02d}/{m:02d}/{y}", f"{y}-{m:02d}-{d:02d}", f"{d:02d}-{MONTHS[m - 1]}-{y}", f"{d:02d}.{m:02d}.{y}"],
        "id": [f"MRN {rng.integers(1_000_000, 9_999_999)}", f"ID: {rng.integers(10_000_000, 99_999_999)}", f"ACC {rng.integers(100_000, 999_999)}"],
        "time": [f"{hh:02d}:{mm:02d}:{ss:02d}", f"{hh:02d}:{mm:02d}"],
    }[kind]
    return choices[int(rng.integers(len(choices)))]


def _origin(position: str, tw: int, th: int, width: int, height: int, margin: int) -> tuple[int, int]:
    x = {"left": margin, "right": width - tw - margin, "centre": (width - tw) // 2}
    y = {"top": margin, "bottom": height - th - margin, "centre": (height - th) // 2}
    if position == "centre":
        return x["centre"], y["centre"]
    vertical, _, horizontal = position.partition("_")
    return x[horizontal], y[vertical]


def _ink(contrast: str, background: float, rgb: bool, rng: np.random.Generator) -> tuple[int, ...] | int:
    if contrast == "colour" and rgb:
        colours = [(255, 255, 0), (0, 255, 0), (0, 255, 255), (255, 160, 0)]
        return colours[int(rng.integers(len(colours)))]
    delta = {"high": 255, "medium": 128, "low": 80, "label_box": 255, "colour": 200}[contrast]
    value = int(np.clip(background + delta, 0, 255)) if background < 128 else int(np.clip(background - delta, 0, 255))
    return (value,) * 3 if rgb else value


def draw_text(image: Image.Image, text: str, font_name: str, size: int, position: str, contrast: str,
              rng: np.random.Generator, occupied: list[tuple[int, int, int, int]]) -> Planted | None:
    """Draw one string; None when it does not fit the image or would overlap an earlier one."""
    font = load_font(font_name, size)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tw, th = right - left, bottom - top
    margin = max(4, size // 3)
    if tw + 2 * margin > image.width or th + 2 * margin > image.height:
        return None
    x, y = _origin(position, tw, th, image.width, image.height, margin)
    box = (x, y, x + tw - 1, y + th - 1)
    if any(not (box[2] < o[0] - 4 or box[0] > o[2] + 4 or box[3] < o[1] - 4 or box[1] > o[3] + 4) for o in occupied):
        return None
    rgb = image.mode == "RGB"
    grey = np.asarray(image.convert("L"))[box[1] : box[3] + 1, box[0] : box[2] + 1]
    background = float(grey.mean()) if grey.size else 0.0
    if contrast == "label_box":
        pad = max(2, size // 6)
        draw.rectangle((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad), fill=(0, 0, 0) if rgb else 0)
        background = 0.0
    draw.text((x - left, y - top), text, font=font, fill=_ink(contrast, background, rgb, rng))
    occupied.append(box)
    return Planted(text, "", box, os.path.basename(font_name), size, contrast, position)


def plant(name: str, base: str, pixels: np.ndarray, specs: list[tuple[str, str, int, str, str]], rng: np.random.Generator) -> SyntheticImage:
    """Draw (kind, font, size, position, contrast) strings on a copy of `pixels`."""
    image = Image.fromarray(pixels).convert("RGB" if pixels.ndim == 3 else "L")
    planted: list[Planted] = []
    occupied: list[tuple[int, int, int, int]] = []
    for kind, font, size, position, contrast in specs:
        text = fake_value(kind, rng)
        start = POSITIONS.index(position)
        for k in range(len(POSITIONS)):  # the asked position, else the next free one
            p = draw_text(image, text, font, size, POSITIONS[(start + k) % len(POSITIONS)], contrast, rng, occupied)
            if p is not None:
                planted.append(Planted(p.text, kind, p.box, p.font, p.size, p.contrast, p.position))
                break
    return SyntheticImage(name, base, np.asarray(image).copy(), planted)


def build_corpus(bases: list[tuple[str, np.ndarray]], variants: int = 6, per_image: int = 3, seed: int = 0) -> list[SyntheticImage]:
    """`variants` planted copies of each base image with `per_image` strings each: kinds cycle,
    fonts, sizes, positions and contrasts are drawn from shuffled full cycles (every value equally often)."""
    rng = np.random.default_rng(seed)
    n = len(bases) * variants * per_image

    def cycle(values: tuple) -> list:
        reps = -(-n // len(values))
        seq = [v for _ in range(reps) for v in values]
        rng.shuffle(seq)
        return seq[:n]

    kinds = [KINDS[i % len(KINDS)] for i in range(n)]
    fonts, sizes, positions, contrasts = cycle(font_names()), cycle(SIZES), cycle(POSITIONS), cycle(CONTRASTS)
    out, i = [], 0
    for base, pixels in bases:
        for v in range(variants):
            specs = []
            for _ in range(per_image):
                specs.append((kinds[i], fonts[i], sizes[i], positions[i], contrasts[i]))
                i += 1
            out.append(plant(f"{base}#v{v}", base, pixels, specs, rng))
    return out


def coverage(box: tuple[int, int, int, int], regions: list[tuple[int, int, int, int]]) -> float:
    """Fraction of `box` covered by the union of `regions`."""
    x0, y0, x1, y1 = box
    canvas = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=bool)
    for r in regions:
        a0, b0, a1, b1 = max(r[0], x0), max(r[1], y0), min(r[2], x1), min(r[3], y1)
        if a0 <= a1 and b0 <= b1:
            canvas[b0 - y0 : b1 - y0 + 1, a0 - x0 : a1 - x0 + 1] = True
    return float(canvas.mean()) if canvas.size else 0.0
