"""Which cross-attention heads time words, as a decoder build option (``--alignment-heads``).

Why a build option: whisper's word timestamps (``whisper.timing.find_alignment``) read the
post-softmax cross-attention weights of a few "alignment heads", and an exported decoder can
only give them if the heads are built in as an output (see
:class:`whisper_ane.model.decoder.TextDecoderANE`). Which heads, in order of precedence:

1. ``--alignment-heads L:H,L:H,...``: given explicitly (layer and head, counting from 0);
2. the weight source's own list (:attr:`LoadedWeights.alignment_heads`): whisper's table for
   an official size, a CTranslate2 ``config.json``'s ``alignment_heads``, a Hugging Face
   ``generation_config.json``'s ``alignment_heads``;
3. whisper's default for a model without a list: every head of the last half of the decoder
   layers (``whisper.model.Whisper.__init__``).

``auto`` (the default) means 2 then 3; ``none`` builds no alignment output.
"""

from __future__ import annotations

from ane_core.build_options import BuildOption
from whisper.model import ModelDimensions

from whisper_ane.model.decoder import AlignmentHeads
from whisper_ane.weights.source import LoadedWeights

AUTO = "auto"
NONE = "none"

AlignmentHeadsOption = str | AlignmentHeads
""":data:`AUTO`, or the heads themselves (``()`` for :data:`NONE`)."""


def parse_alignment_heads(text: str) -> AlignmentHeadsOption:
    """``auto``, ``none`` or ``L:H,L:H,...`` -> the option's value; anything else is a
    ``ValueError`` (the build-option parser turns it into a one-line usage error)."""
    text = text.strip()
    if text in (AUTO, NONE):
        return AUTO if text == AUTO else ()
    heads = []
    for item in text.split(","):
        layer, sep, head = item.strip().partition(":")
        if not sep or not layer.isdigit() or not head.isdigit():
            raise ValueError(f"{item!r} is not LAYER:HEAD")
        heads.append((int(layer), int(head)))
    return tuple(heads)


def format_alignment_heads(heads: AlignmentHeads) -> str:
    """``"2:3,3:0"``: how heads are written in package metadata, tensor descriptions and on
    the command line (:func:`parse_alignment_heads` reads it back; ``""`` for none)."""
    return ",".join(f"{layer}:{head}" for layer, head in heads)


ALIGNMENT_HEADS_OPTION = BuildOption(
    name="alignment_heads",
    type=parse_alignment_heads,
    default=AUTO,
    expected="auto, none or LAYER:HEAD,LAYER:HEAD,...",
    help="Cross-attention heads whose weights the decoder also returns, for word timestamps: "
    "auto (the checkpoint's list, whisper's table, or the last half of the layers), none, or "
    "LAYER:HEAD,... (from 0).",
)


def whisper_default_heads(dims: ModelDimensions) -> AlignmentHeads:
    """Every head of the last half of the decoder layers, as ``whisper.model.Whisper`` sets
    its ``alignment_heads`` buffer before a checkpoint provides one."""
    first = dims.n_text_layer // 2
    return tuple(
        (layer, head)
        for layer in range(first, dims.n_text_layer)
        for head in range(dims.n_text_head)
    )


def resolve_alignment_heads(option: AlignmentHeadsOption, weights: LoadedWeights) -> AlignmentHeads:
    """The heads ``option`` means for ``weights`` (see the module docstring)."""
    if option == AUTO:
        return weights.alignment_heads or whisper_default_heads(weights.dims)
    return tuple(option)
