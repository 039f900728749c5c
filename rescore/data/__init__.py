"""The data layer: n-best sets and the files they come from and go to.

``archive`` reads and writes Kaldi text archives strictly (UTF-8, line ends, Kaldi's float
spellings); ``nbest`` holds the canonical in-memory set (:class:`~rescore.data.nbest.NbestSet`,
columnar arrays) and its dataset directory (``load_set``/``save_set``); ``textnorm`` the text
normalisations that scoring and models apply; ``lattice`` the word lattices and their N-best
search; ``split`` the per-job split of a set and the merge of per-job score archives; and
``formats`` one importer/exporter module per recogniser's format. Imports only the foundation
modules (``rescore.config``, ``defaults``, ``exceptions``, ``log``, ``runtime``, ``stage``).
"""
