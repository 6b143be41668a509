"""BERT-family sentence encoders as an ane architecture plugin (architecture ``bert``)."""

__version__ = "0.1.0"
