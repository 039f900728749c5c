"""Model loading and the RescoreBERT student."""

from rescore.models.student import RescoreBert

__all__ = ["RescoreBert"]
