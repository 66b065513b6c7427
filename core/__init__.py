"""RouteRM's torch-free core: what every stage of the pipeline agrees on.

Data flows one way (data -> training -> checkpoint -> export -> bundle -> runtime), and each stage
imports this package; it imports none of them, and nothing heavier than numpy:

* :mod:`core.data`      the vendored preference data: loading, validation, deterministic splits
* :mod:`core.text`      (prompt, response) -> token ids: truncation policies, special tokens, padding
* :mod:`core.inputs`    checking a scoring request at the boundary (texts, domain names)
* :mod:`core.scoring`   route-and-score: micro-batches, router logits, rewards in input order
* :mod:`core.manifest`  the bundle contract (``manifest.json``), written by export, read by all
* :mod:`core.stats`     bootstrap intervals and the per-domain mean used for every accuracy figure
* :mod:`core.errors`    the typed errors
* :mod:`core.hashing`   sha256 of files and trees

A test proves the import stays light (``sys.modules`` holds neither torch nor transformers).
"""
