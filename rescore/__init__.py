"""rescore: BERT second-pass rescoring of ASR n-best lists (RescoreBERT), Kaldi/ESPnet style."""

__version__ = "0.1.0"
