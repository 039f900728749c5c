"""rescore: BERT second-pass rescoring of ASR n-best lists (RescoreBERT), Kaldi/ESPnet style.

``import rescore`` imports neither torch nor transformers (a CLI's ``--help`` stays fast). It
registers the student (:class:`rescore.models.RescoreBert`, model type ``rescore_bert``) with
transformers' ``AutoConfig``/``AutoModel`` once transformers is imported, so that
``AutoModel.from_pretrained(student_dir)`` works in any program that imported ``rescore``.

``rescore.Rescorer`` (:class:`rescore.rescoring.bundle.Rescorer`, imported on first use) applies a
rescorer bundle written by ``python -m rescore.bin.export_rescorer``.
"""

from __future__ import annotations

import importlib.abc
import sys

__version__ = "0.1.0"
__all__ = ["Rescorer", "__version__"]


def __getattr__(name: str):
    if name == "Rescorer":  # imported on first use: ``import rescore`` stays light
        from rescore.rescoring.bundle import Rescorer

        return Rescorer
    raise AttributeError(f"module 'rescore' has no attribute {name!r}")


def _register_student() -> None:
    import rescore.models.student  # noqa: F401  (registers itself with AutoConfig/AutoModel)


class _RegisterAfterTransformers(importlib.abc.MetaPathFinder):
    """Finds nothing; when ``transformers`` is first imported, wraps its loader so that the student
    is registered right after transformers has loaded, then removes itself."""

    def find_spec(self, name, path=None, target=None):
        if name != "transformers":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            _register_student()

        loader.exec_module = exec_then_register
        return spec


if "transformers" in sys.modules:
    _register_student()
elif not any(isinstance(f, _RegisterAfterTransformers) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterTransformers())
