"""Model loading and the RescoreBERT student."""
