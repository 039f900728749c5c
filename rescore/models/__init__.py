"""The models layer: the language models that score hypotheses, and loading them.

``hf`` loads Hugging Face tokenizers and masked LMs by hub id or directory (safetensors only);
``pll`` scores texts with a masked LM's pseudo-log-likelihood (the teacher);
``student`` is the RescoreBERT student (:class:`RescoreBert`, one forward pass per hypothesis,
registered with transformers' Auto classes); ``lstm`` the baseline causal LMs (the project's LSTM
LM and its units, or a Hugging Face causal LM); ``truncate`` keeps an encoder's first layers (the student's start).
Imports the foundation modules, :mod:`rescore.data` and :mod:`rescore.scoring` only. Importing
this package imports torch and transformers (through ``student``); ``import rescore`` does not.
"""

from rescore.models.student import RescoreBert

__all__ = ["RescoreBert"]
