"""The scoring layer: error counts and rates the Kaldi way, and what is built on them.

``wer`` holds Kaldi's edit distance and alignment, set-level rates as ``compute-wer`` prints
them and bulk per-hypothesis error counts; ``stats`` a set's first-pass, oracle and cached
per-hypothesis errors and its scoring setup (normalisation, metric); ``tuning`` the vectorised
search of interpolation weights that minimise errors; ``bootstrap`` the paired percentile
bootstrap of a change in error rate; ``results`` the RESULTS.md tables gathered from rescoring
summaries. Imports the foundation modules and :mod:`rescore.data` only.
"""
