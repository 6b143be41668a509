"""Per-utterance results kept on disk, so an evaluation resumes where it stopped.

Why JSONL, one file per variant: a run over hundreds of utterances and several variants takes
hours on the reference executor; each finished utterance is one appended, flushed line, so an
interrupted run loses at most the utterance in flight and a rerun computes only what is
missing. A line counts only for the same utterance id, audio bytes (SHA-256), variant, weights
and decoding settings (its ``key``); a torn last line (a crash mid-write) is ignored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def result_key(utterance_id: str, audio_sha256: str, variant_key: str, weights: str) -> str:
    """What a cached result must match to be reused."""
    text = json.dumps([utterance_id, audio_sha256, variant_key, weights])
    return hashlib.sha256(text.encode()).hexdigest()


class ResultCache:
    """The results of one variant in ``path`` (JSONL), by key; written only by its owner
    process (workers hand their results back), so lines never interleave."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.results: dict[str, dict[str, Any]] = {}
        self._torn = False
        if self.path.is_file():
            text = self.path.read_text(encoding="utf-8", errors="replace")
            self._torn = bool(text) and not text.endswith("\n")
            for line in text.splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by an interrupted run
                if isinstance(record, dict) and isinstance(record.get("key"), str):
                    self.results[record["key"]] = record

    def get(self, key: str) -> dict[str, Any] | None:
        return self.results.get(key)

    def add(self, record: Mapping[str, Any]) -> None:
        """Keep ``record`` (it has a ``key``) and append it to the file at once."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            if self._torn:  # end the torn line first, or the new record would extend it
                handle.write("\n")
                self._torn = False
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
        self.results[record["key"]] = dict(record)
