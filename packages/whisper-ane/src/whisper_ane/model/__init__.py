"""Model layer: Whisper's PyTorch modules, the ANE rewrites (channels-first, 1x1 convs, static
cache) and the stock modules driven with the same one-token interface. They know nothing of
Core ML; the export layer wraps them for conversion."""
