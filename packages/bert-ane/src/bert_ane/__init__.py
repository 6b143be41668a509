"""BERT-family sentence encoders as an ane architecture plugin (architecture ``bert``).

The public helpers are the app's side of the default export (``--token-input embeddings``):
:func:`token_embeddings` reads the word-embedding table shipped inside a package, and
:func:`embed_tokens` turns token ids into the model's first input, ``(1, C, 1, S)``.
"""

from bert_ane.lookup import embed_tokens, token_embeddings

__all__ = ["embed_tokens", "token_embeddings"]
__version__ = "0.1.0"
