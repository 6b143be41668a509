"""Runtime layer: running Whisper with any backend (PyTorch modules, or exported packages in
the reference executor or Core ML) through openai-whisper's own decoding loop; what
``ane transcribe``, ``ane parity`` and ``ane bench`` run for Whisper."""
