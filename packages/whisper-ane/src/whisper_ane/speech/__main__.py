"""``python -m whisper_ane.speech [NAME...]``: print the paths of the shipped speech clips.

For shell use, e.g. ``ane transcribe whisper "$(python -m whisper_ane.speech jfk)"``; with
no name, every clip's path, one per line.
"""

from __future__ import annotations

import sys

from ane_core.errors import AneError

from whisper_ane.speech import speech_path, speech_paths


def main(argv: list[str]) -> int:
    try:
        paths = [speech_path(name) for name in argv] if argv else speech_paths()
    except AneError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    print("\n".join(str(path) for path in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
