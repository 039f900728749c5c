"""Command-line steps, each run as ``python -m rescore.bin.<step>`` with ``main(argv=None)``."""
