"""The per-source PHI policy declared in the catalog (`phi:` block of a source).

``pixels`` decides what happens to text burned into an image's pixels:

``auto``        (default) quarantine an image whose DICOM header says ``BurnedInAnnotation=YES`` or
                whose text looks like PHI (a name, date, time, ID, phone, e-mail or postal pattern,
                or a value of its own DICOM header); other text (``R``, ``5 cm``) is kept and recorded
``mask``        fill every detected text region in the clean image (and so in every overlay drawn from
                it) before the image is hashed or written; an image flagged ``YES`` in which no text
                is found is quarantined
``quarantine``  quarantine every image with detected text or a ``YES`` flag
``allow``       keep the text (the source's text is known not to identify anyone, e.g. scale bars);
                only a value of the image's own DICOM header seen in its pixels still quarantines

Quarantined records stay in the manifests with their reasons and never enter a release.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

PixelPolicy = Literal["auto", "mask", "quarantine", "allow"]


class PhiPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pixels: PixelPolicy = "auto"
    ocr: bool = True  # False: no text detection (only the DICOM flag is used); recorded per image
