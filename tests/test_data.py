"""The vendored data: every record valid, split by prompt, corrupt input named by file/line/field."""
import gzip
import json

import pytest

from core.data import DOMAINS, DataError, SplitConfig, load_domain, load_splits, split_pairs


@pytest.fixture(scope="module")
def splits():
    return load_splits()


def test_all_five_domains_load_and_split_by_prompt(splits):
    assert set(splits) == set(DOMAINS)
    for domain, parts in splits.items():
        prompts = {name: {p.prompt for p in pairs} for name, pairs in parts.items()}
        assert not prompts["train"] & prompts["test"], domain
        assert not prompts["train"] & prompts["validation"], domain
        assert not prompts["validation"] & prompts["test"], domain
        total = sum(len(v) for v in parts.values())
        assert len(parts["test"]) >= max(100, 0.10 * total), domain
        assert len(parts["validation"]) > 0 and len(parts["train"]) > len(parts["test"]), domain


def test_split_is_deterministic(splits):
    again = split_pairs(load_domain("math"))
    assert [p.id for p in again["test"]] == [p.id for p in splits["math"]["test"]]


def test_shared_prompts_stay_together():
    pairs = load_domain("long_form_qa")  # QA-Feedback: several pairs per question
    assert len({p.prompt for p in pairs}) < len(pairs)
    parts = split_pairs(pairs, SplitConfig(test_fraction=0.3))
    where = {}
    for name, ps in parts.items():
        for p in ps:
            assert where.setdefault(p.prompt, name) == name


def _write(tmp_path, domain, lines):
    path = tmp_path / f"{domain}.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


GOOD = {"id": "a", "domain": "math", "source": "t", "prompt": "p", "chosen": "c", "rejected": "r"}


@pytest.mark.parametrize("bad, message", [
    ("{not json", "not valid JSON"),
    (json.dumps([1, 2]), "expected a JSON object"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "chosen"}), "missing field 'chosen'"),
    (json.dumps({**GOOD, "prompt": 3}), "field 'prompt' must be a string"),
    (json.dumps({**GOOD, "rejected": "  "}), "field 'rejected' is empty"),
    (json.dumps({**GOOD, "domain": "poetry"}), "field 'domain' is 'poetry'"),
    (json.dumps({**GOOD, "rejected": "c"}), "identical"),
])
def test_corrupt_record_is_named_by_file_line_and_field(tmp_path, bad, message):
    path = _write(tmp_path, "math", [json.dumps({**GOOD, "id": "ok"}), bad])
    with pytest.raises(DataError) as err:
        load_domain("math", tmp_path)
    assert f"{path}:2" in str(err.value) and message in str(err.value)


def test_duplicate_ids_and_missing_file(tmp_path):
    _write(tmp_path, "math", [json.dumps(GOOD), json.dumps(GOOD)])
    with pytest.raises(DataError, match="duplicate id 'a'"):
        load_domain("math", tmp_path)
    with pytest.raises(DataError, match="no such file"):
        load_domain("harmlessness", tmp_path)
