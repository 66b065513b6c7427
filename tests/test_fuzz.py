"""Untrusted input (request texts, bundle files, JSON lines) cannot crash the host.

* C library: the fuzz targets of ``tests/fuzz/`` (JSON reader, UTF-8 + WordPiece tokenizer,
  manifest loader, routerm-score's JSONL line parser, the BPE and Unigram pipelines and
  tokenizer.json loading, chat templates and rows to ids) built with AddressSanitizer +
  UndefinedBehaviorSanitizer and run for a bounded time each on their seed corpora
  (``tests/fuzz/run.sh``, g++ and its random-mutation driver; ``scripts/fuzz_campaign.py`` runs
  them coverage-guided under libFuzzer); a memory error, undefined behaviour, an unexpected
  exception or a violated invariant (tests/fuzz/tokenizer_checks.hpp, fuzz_chat.cpp) fails the test.
* Python engine text path (Hypothesis): arbitrary Unicode (surrogates, controls, any length) gives
  the runtime tokenizer the training tokenizer's ids, and the engine either returns one finite
  float32 reward per pair or raises TypeError/ValueError naming the argument.
"""
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.base import default_base_model, load_tokenizer
from core.text import encode_pairs, single_segment
from runtime import RewardEngine
from runtime.tokenizer import BundleTokenizer

REPO = Path(__file__).resolve().parent.parent
FUZZ_SECONDS = int(os.environ.get("ROUTERM_FUZZ_SECONDS", "10"))
FUZZ_TARGETS = ("json", "tokenizer", "manifest", "jsonl", "bpe", "unigram", "chat")


@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None, reason="no C++ compiler")
def test_c_parsers_survive_sanitized_fuzzing():
    # PYTHON: the interpreter that has `tokenizers`, for the tokenizer.json files make_tokenizers.py trains
    env = {**os.environ, "ROUTERM_FUZZ_TOKENIZER_DIR": default_base_model(), "PYTHON": sys.executable,
           "FUZZ_ENGINE": "driver"}
    proc = subprocess.run(["bash", "tests/fuzz/run.sh", str(FUZZ_SECONDS), str(REPO / "build" / "fuzz"), *FUZZ_TARGETS],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    ran = [line for line in proc.stdout.splitlines() if line.endswith(": ok")]
    assert ran == [f"fuzz_{t}: ok" for t in FUZZ_TARGETS], proc.stdout[-3000:]


TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=300)   # surrogates included
HF = single_segment(load_tokenizer(default_base_model()))
FAST = BundleTokenizer(Path(default_base_model()) / "tokenizer.json", HF.pad_token_id, False)


@settings(max_examples=150, deadline=None)
@given(prompts=st.lists(TEXT, min_size=1, max_size=4), response=TEXT, length=st.integers(8, 96))
def test_runtime_tokenizer_matches_training_on_any_text(prompts, response, length):
    from core.text import clean_text
    prompts = [clean_text(p, "p") for p in prompts]
    responses = [clean_text(response, "r")] * len(prompts)
    assert encode_pairs(FAST, prompts, responses, length) == encode_pairs(HF, prompts, responses, length)


@pytest.fixture(scope="module")
def arliss_engine(tiny_bundles):
    return RewardEngine.from_bundle(tiny_bundles["arliss"], threads=1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(TEXT, TEXT), min_size=0, max_size=5),
       domain=st.one_of(st.none(), st.sampled_from(["alpha", "gamma"]), TEXT))
def test_engine_answers_any_text_with_finite_rewards_or_a_clear_error(arliss_engine, pairs, domain):
    prompts, responses = [p for p, _ in pairs], [r for _, r in pairs]
    domains = None if domain is None else [domain] * len(pairs)
    try:
        result = arliss_engine.score(prompts, responses, domains)
    except ValueError as exc:
        assert domain is not None and "known:" in str(exc)
        return
    assert result.rewards.dtype == np.float32 and len(result.rewards) == len(pairs)
    assert all(math.isfinite(float(r)) for r in result.rewards)
