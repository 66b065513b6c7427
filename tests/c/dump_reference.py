"""Reference rewards from the Python engine, for the C library's parity tests.

    python tests/c/dump_reference.py --bundles DIR --names baseline rodos ... --pairs 250 --out OUTDIR

For each bundle DIR/<name>, writes OUTDIR/<name>.jsonl: one line per pair, with ``prompt``,
``response``, ``reward`` and ``domain`` from ``runtime.RewardEngine.from_bundle(...).score``
(CPU, one thread), ``given_reward`` scored with ``domains=`` row i -> domain i mod n (so every
domain's reward model is compared even when a briefly trained router picks few), the model input
``ids``/``types`` (core.text.encode_pairs under the bundle's truncation ``policy``, as the engine
reads it from the manifest) and the ``prompt_ids``/``response_ids`` without special tokens.
``prompt_messages``/``response_messages``/``messages_reward``: the row as chat messages (every third
prompt a three-turn conversation), scored by the engine (a chat template writes them; other bundles
flatten them), for routerm_score_rows.
Bundles of imported models read rows their own way (core.formats): ``ids``/``types`` are then the
top-level format's encoding, and ``prompt_ids``/``response_ids`` are null (a chat row's ids are not
its prompt's ids followed by its response's, and a bundle with ``parts`` has no one tokenizer).
Pairs: the test split of every domain (core.data.load_splits), taken round-robin over domains
and alternating chosen/rejected, plus a few edge-case prompts (accents, CJK, special tokens in
text, 100+ char words). With ``--policy NAME``, every bundle's manifest must name that policy and
some pairs must be encoded differently under the other policies (else the parity check could not
tell them apart).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.chat import ChatFormat
from core.data import load_splits
from core.formats import TextFormat, encode_rows
from core.text import TRUNCATION_POLICIES, encode_pairs
from dump_token_ids import EDGE_CASES   # beside this script, whose folder Python puts on the path
from runtime import RewardEngine


def test_pairs(n: int) -> list[tuple[str, str]]:
    tests = [d["test"] for d in load_splits().values()]
    # NUL ends a C string, so the C API cannot be given one inside a text (the tokenizer test covers it).
    out = [(e.replace("\x00", ""), "A reply to an unusual prompt.") for e in EDGE_CASES if e.strip()]
    for i in range(max(len(t) for t in tests)):
        for t in tests:
            if i < len(t) and len(out) < n:
                out.append((t[i].prompt, t[i].chosen if i % 2 == 0 else t[i].rejected))
    return out


def as_messages(i: int, prompt: str, response: str) -> tuple[list[dict], list[dict]]:
    """Row i as TRL's conversational form: a user turn (every third row after an earlier exchange)
    and an assistant turn."""
    turns = [{"role": "user", "content": prompt}]
    if i % 3 == 2:
        turns = [{"role": "user", "content": "Hi there."},
                 {"role": "assistant", "content": "Hello! What can I do for you?"}] + turns
    return turns, [{"role": "assistant", "content": response}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundles", required=True, type=Path)
    ap.add_argument("--names", nargs="+", required=True)
    ap.add_argument("--pairs", type=int, default=250)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--policy", choices=TRUNCATION_POLICIES, default=None,
                    help="the truncation policy every bundle must name")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    pairs = test_pairs(args.pairs)
    prompts, responses = [p for p, _ in pairs], [r for _, r in pairs]
    for name in args.names:
        engine = RewardEngine.from_bundle(args.bundles / name, providers=["cpu"], threads=1)
        result = engine.score(prompts, responses)
        given = [engine.domains[i % len(engine.domains)] for i in range(len(pairs))]   # every domain's model
        forced = engine.score(prompts, responses, domains=given)
        conversations = [as_messages(i, p, r) for i, (p, r) in enumerate(pairs)]
        chats = engine.score([p for p, _ in conversations], [r for _, r in conversations])
        tok, max_length, policy = engine.tokenizer, engine.manifest.max_length, engine.truncation
        if args.policy and policy != args.policy:
            raise SystemExit(f"{args.bundles / name}: the engine encodes with truncation policy {policy}, "
                             f"expected {args.policy}")
        encoded = encode_pairs(tok, prompts, responses, max_length, policy=policy)
        others = [encode_pairs(tok, prompts, responses, max_length, policy=other)
                  for other in TRUNCATION_POLICIES if other != policy]
        differ = sum(any(o[i].input_ids != e.input_ids for o in others) for i, e in enumerate(encoded))
        if args.policy and not differ:
            raise SystemExit(f"{args.bundles / name}: no pair is encoded differently under another truncation "
                             f"policy (max_length {max_length}), so parity could not tell {policy} from them")
        p_ids = tok(prompts, add_special_tokens=False)["input_ids"]
        r_ids = tok(responses, add_special_tokens=False)["input_ids"]
        chat = engine.manifest.tokenizer.get("chat_template")
        if chat is not None or engine.manifest.parts:   # rows read through core.formats
            top = TextFormat(tok, max_length, tok.pad_token_id, policy,
                             None if chat is None else ChatFormat.from_dict(chat, "manifest"))
            encoded = encode_rows(top, prompts, responses)
            p_ids = r_ids = [None] * len(pairs)
        with open(args.out / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            for i in range(len(pairs)):
                fh.write(json.dumps({
                    "prompt": prompts[i], "response": responses[i], "reward": float(result.rewards[i]),
                    "domain": result.domains[i], "given_domain": i % len(engine.domains),
                    "given_reward": float(forced.rewards[i]), "policy": policy,
                    "ids": encoded[i].input_ids, "types": encoded[i].token_type_ids,
                    "prompt_ids": p_ids[i], "response_ids": r_ids[i],
                    "prompt_messages": conversations[i][0], "response_messages": conversations[i][1],
                    "messages_reward": float(chats.rewards[i])}) + "\n")
        used = sorted({d for d in result.domains if d is not None})
        print(f"{name}: {len(pairs)} pairs, domains used {used}; truncation {policy} "
              f"({differ} pairs encoded differently under the other policies)")


if __name__ == "__main__":
    main()
