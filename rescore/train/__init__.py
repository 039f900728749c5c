"""The training layer: everything that fits a model's weights.

``trainer`` is the one training loop (:class:`~rescore.train.trainer.Trainer`: epochs, logging,
checkpoints, resume, evaluation, distributed bookkeeping) that every trainer below subclasses;
``loop`` the pieces it is built from (seeding and RNG state, AdamW with warmup and decay,
checkpoints that resume exactly, the JSON-lines log); ``losses`` the student's objectives
(MD, MWER, MWED) on padded n-best batches; ``mlm`` the teacher's domain adaptation (continued
masked-LM training); ``student`` the RescoreBERT student's MD then MWER/MWED training; ``lstm`` the
baseline LSTM LM's training. The top layer of the library: it may import the foundation modules,
:mod:`rescore.data`, :mod:`rescore.scoring` and :mod:`rescore.models`.
"""
