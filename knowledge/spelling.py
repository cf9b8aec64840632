"""Fix the typos customers make before a question is embedded ("retrun", "pasword", "doesnt").

A word without its apostrophe ("cant", "whats") becomes the contraction.

A word is left alone when it is an English word the embedding model knows as a whole token or a
word of the shop's documents. Otherwise, if one edit (insert, delete, replace, swap two letters,
or add an apostrophe) turns it into a word of the documents, that word replaces it — the most
frequent one when several do. Other short words (under 4 letters) are never touched.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_LETTERS = "abcdefghijklmnopqrstuvwxyz'"
# Customers drop apostrophes; "cant" must become "can't", not "can".
CONTRACTIONS = frozenset(
    "aren't can't couldn't didn't doesn't don't hadn't hasn't haven't i'd i'll i'm i've isn't "
    "it's let's shouldn't that's there's wasn't we're weren't what's where's who's won't "
    "wouldn't you're you've".split()
)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class Speller:
    def __init__(self, document_texts: Iterable[str], known_words: Iterable[str] = ()) -> None:
        self.vocabulary = Counter(w for text in document_texts for w in words(text))
        self.known = frozenset(known_words) | self.vocabulary.keys()

    @classmethod
    def for_documents(cls, docs_dir: Path, model_vocab: Path | None = None) -> Speller:
        texts = [p.read_text(encoding="utf-8") for p in sorted(Path(docs_dir).rglob("*.md"))]
        known: list[str] = []
        if model_vocab is not None and model_vocab.exists():
            known = [w for w in model_vocab.read_text(encoding="utf-8").split() if w.isalpha()]
        return cls(texts, known)

    def correct_word(self, word: str) -> str:
        if len(word) < 4 or word in self.known:
            return word
        for i in range(1, len(word)):
            contraction = f"{word[:i]}'{word[i:]}"
            if contraction in CONTRACTIONS:
                return contraction
        candidates = [w for w in _edits(word) if w in self.vocabulary]
        if not candidates:
            return word
        return max(candidates, key=lambda w: (self.vocabulary[w], w))

    def correct(self, text: str) -> str:
        return _WORD.sub(lambda m: self.correct_word(m.group(0)), text.lower())


def _edits(word: str) -> set[str]:
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = {a + b[1:] for a, b in splits if b}
    swaps = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
    inserts = {a + c + b for a, b in splits for c in _LETTERS}
    return deletes | swaps | replaces | inserts
