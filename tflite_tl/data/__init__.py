"""Datasets for transfer learning, as float32 NHWC images in [0, 1].

``load(name, resolution=..., channels=...)`` returns a ``Dataset``; nothing is
downloaded at run time: every source is a package installed beforehand, and a
missing one raises ``DatasetNotInstalledError`` naming its install command.
"""
from tflite_tl.data.dataset import Dataset
from tflite_tl.data.episodes import Episode, episodes, sample_episode
from tflite_tl.data.errors import DatasetNotInstalledError
from tflite_tl.data.loader import (dataset_info, list_datasets, load,
                                   load_folder)
from tflite_tl.data.splits import cap_per_class, few_shot, stratified_split
from tflite_tl.data.transforms import (convert_channels, resize, to_float,
                                       to_model_input)

__all__ = [
    "Dataset", "DatasetNotInstalledError", "Episode", "cap_per_class",
    "convert_channels", "dataset_info", "episodes", "few_shot", "list_datasets", "load", "load_folder", "resize",
    "sample_episode", "stratified_split", "to_float", "to_model_input",
]
