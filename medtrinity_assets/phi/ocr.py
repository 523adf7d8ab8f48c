"""Text in pixels: PP-OCRv4 detection, then recognition of the detected regions only.

The engine is `rapidocr-onnxruntime` (its wheel ships the PP-OCRv4 detection and recognition
ONNX models, so it runs offline and installs with the project). Detection runs on the image
downscaled to `det_max_side`; recognition runs only on the crops of detected boxes. Recognised
strings exist only in memory (`ReadRegion.text`, hidden from repr) to decide whether a region
looks like PHI; they are never returned by the public screening functions, logged or stored.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from medtrinity_assets.phi.config import OcrSettings, load_settings

ENGINE_NAME = "rapidocr-onnxruntime PP-OCRv4"


@dataclass(frozen=True)
class ReadRegion:
    """One detected text region: box (x0, y0, x1, y1; inclusive pixel bounds) and its reading."""

    box: tuple[int, int, int, int]
    score: float
    text: str = field(repr=False)


def _rgb_bgr(pixels: np.ndarray) -> np.ndarray:
    """uint8 grey or RGB(A) -> contiguous 3-channel BGR, as the engine expects."""
    if pixels.dtype != np.uint8:
        raise ValueError(f"OCR needs uint8 display pixels, got {pixels.dtype}")
    if pixels.ndim == 2:
        return np.ascontiguousarray(np.repeat(pixels[..., None], 3, axis=2))
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        return np.ascontiguousarray(pixels[..., 2::-1])
    raise ValueError(f"OCR needs a grey or RGB image, got shape {pixels.shape}")


class OcrEngine:
    """Detection + recognition on demand; one instance per process (see `get_engine`)."""

    def __init__(self, settings: OcrSettings | None = None) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self.settings = settings or load_settings().ocr
        s = self.settings
        self._ocr = RapidOCR(
            det_limit_side_len=s.det_max_side,
            det_limit_type="max",
            det_box_thresh=s.det_box_thresh,
            det_unclip_ratio=s.det_unclip_ratio,
            intra_op_num_threads=s.threads,
            inter_op_num_threads=1,
            print_verbose=False,
        )
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        from importlib.metadata import version

        return f"{ENGINE_NAME} {version('rapidocr-onnxruntime')} det_max_side={self.settings.det_max_side}"

    def detect(self, pixels: np.ndarray) -> list[np.ndarray]:
        """Quadrilaterals (4x2 float, x/y) of detected text, in image pixels."""
        img = _rgb_bgr(pixels)
        if min(img.shape[:2]) < 8:
            return []
        import cv2

        scale = self.settings.det_max_side / max(img.shape[:2])
        if scale > 1.0:  # small images: the detector finds small text far better at its working size
            scale = min(scale, self.settings.det_max_upscale)
            img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)), interpolation=cv2.INTER_LINEAR)
        else:
            scale = 1.0  # the engine downscales to det_max_side itself
        with self._lock:
            boxes, _ = self._ocr.text_det(img)
        return [] if boxes is None else [np.asarray(b, dtype=np.float32) / scale for b in boxes]

    def read(self, pixels: np.ndarray) -> list[ReadRegion]:
        """Text regions of an image: detected, kept when text-shaped, read by recognition."""
        img = _rgb_bgr(pixels)
        quads = self.detect(pixels)
        if not quads:
            return []
        with self._lock:
            crops = self._ocr.get_crop_img_list(img, [q.copy() for q in quads])
            readings, _ = self._ocr.text_rec(crops)
        height, width = img.shape[:2]
        out = []
        for quad, (text, score) in zip(quads, readings):
            box = quad_box(quad, width, height)
            if is_text_region(box, float(score), height, self.settings):
                out.append(ReadRegion(box, float(score), str(text)))
        return out


def quad_box(quad: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    return (max(0, int(x0)), max(0, int(y0)), min(width - 1, int(x1)), min(height - 1, int(y1)))


def is_text_region(box: tuple[int, int, int, int], rec_score: float, image_height: int, s: OcrSettings) -> bool:
    """Text lines are thin: anatomy blobs the detector sometimes returns are tall and unreadable."""
    w, h = box[2] - box[0] + 1, box[3] - box[1] + 1
    if h < s.min_height_px or h > s.max_height_frac * image_height:
        return False
    return rec_score >= s.rec_min_score or w >= s.min_aspect * h


_ENGINES: dict[OcrSettings, OcrEngine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(settings: OcrSettings | None = None) -> OcrEngine:
    """The process-wide engine for these settings (models load once per process)."""
    s = settings or load_settings().ocr
    with _ENGINES_LOCK:
        if s not in _ENGINES:
            _ENGINES[s] = OcrEngine(s)
        return _ENGINES[s]
