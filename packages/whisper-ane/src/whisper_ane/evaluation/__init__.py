"""Word error rate of exported Whisper variants beside stock openai-whisper on real speech
(``ane eval whisper``): datasets, variants, per-utterance cache, parallel runs and reports.

Layer map of this package (each module imports only those below it):

* ``matrix``: the run (:func:`evaluate`);
* ``report``, ``runner``, ``audio_check``: the files written, the worker processes, the
  audio read once first;
* ``variants``, ``datasets``, ``cache``, ``wer``: what runs, what is read, what is kept, how
  it is scored.
"""

from whisper_ane.evaluation.datasets import (
    Dataset,
    Skipped,
    Utterance,
    open_dataset,
    read_asterisk,
    read_asterisk_debian,
    read_folder,
    read_tsv,
    select,
)
from whisper_ane.evaluation.matrix import evaluate
from whisper_ane.evaluation.variants import Variant, parse_variant

__all__ = [
    "Dataset",
    "Skipped",
    "Utterance",
    "Variant",
    "evaluate",
    "open_dataset",
    "parse_variant",
    "read_asterisk",
    "read_asterisk_debian",
    "read_folder",
    "read_tsv",
    "select",
]
