"""The stable reject reason codes of ingestion (RejectError.reason), with what each means."""

from __future__ import annotations

REJECT_REASONS: dict[str, str] = {
    # guards
    "missing_file": "the image file (or a detached header's data file) does not exist",
    "zero_byte_file": "the file is empty",
    "path_escapes_root": "the path, a symlink in it, or a detached header's data file resolves outside the source root",
    "special_file": "a FIFO, socket or device file (never opened: reading a FIFO would block)",
    "unsupported_format": "a format that is recognised but not ingested (BMP, GIF, Analyze...) or not recognised",
    "wrong_extension": "the content is another known format than the name / catalog declares",
    "corrupt_file": "cannot be parsed or decoded: truncated, damaged, or not the declared format",
    "decompression_bomb": "the header announces more pixels than policy.max_pixels",
    # content
    "decode_failed": "compressed DICOM pixel data that no installed decoder can decode",
    "no_pixel_data": "no image in the file (DICOM without pixel data, empty TIFF, empty series directory)",
    "not_an_image": "a DICOM object that is not an image (SEG, RTSTRUCT, SR, RT Plan...)",
    "non_finite_values": "NaN or infinite voxel values",
    "unsupported_dimensions": "time series / vector / >4-D data, or frames of different shapes",
    "unsupported_pixel_type": "complex or unknown voxel type",
    "multiple_series": "a series directory holding more than one DICOM series",
    "inconsistent_series": "slices of a series differ in size or orientation, or repeat positions",
    "image_too_small": "a side of the output image is below policy.output.min_side",
    "no_slices": "no plane passed the slicing policy (e.g. min_foreground)",
    # masks
    "mask_missing": "a mask file does not exist",
    "corrupt_mask": "a mask file cannot be read",
    "unsupported_mask": "a mask that cannot be interpreted with its convention (colour label map, float labels...)",
    "shape_mismatch": "a mask does not have the image's shape (or a DICOM-SEG refers to none of its slices)",
    "geometry_mismatch": "a volume mask has another voxel spacing than its image",
    # stage / manifest
    "unexpected_error": "an exception that is not a RejectError (a bug or an unforeseen input); its message is reduced to words that cannot carry values",
    "write_failed": "writing the item's image or mask stack to storage failed (the rest of the shard goes on)",
    "item_id_collision": "manifest: another file of the source has the same item id (e.g. the same image listed twice)",
    "name_not_matched": "manifest: the file's path does not match the catalog's layout.names.regex (required)",
    "unmapped_name_value": "manifest: a modality or organ captured from the file name has no entry in the catalog's mapping",
}
