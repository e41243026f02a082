"""Data: datasets by name, the data root, pixel scaling, the labeled subset and batch streams."""

from .datasets import ImageData, cache_dir, load_dataset, resolve_data_root
from .labeled import balanced_labeled_subset, data_permutation
from .scaling import DEFAULT_SCALE, SCALES, data_scale, dequantize, to_float, to_uint8
from .streams import SemiSupervisedStream, UnsupervisedStream

__all__ = [
    "DEFAULT_SCALE",
    "ImageData",
    "SCALES",
    "SemiSupervisedStream",
    "UnsupervisedStream",
    "balanced_labeled_subset",
    "cache_dir",
    "data_permutation",
    "data_scale",
    "dequantize",
    "load_dataset",
    "resolve_data_root",
    "to_float",
    "to_uint8",
]
