#!/usr/bin/env python3
"""Reference implementation of fintel's filing-change measures (crate fintel-changes).

Written from the rules in the crate's documentation, not from its code, with the standard
tools: scikit-learn's CountVectorizer for the term-frequency cosine, Python sets for Jaccard,
difflib's SequenceMatcher for the "simple" diff measure, and an exact shortest edit script
(Myers) for the minimum edit measure, since difflib's matching blocks are not always minimal.

Input (stdin): {"stop_words": PATH, "pairs": [{"old": PATH, "new": PATH}, ...]}, each PATH a
UTF-8 text file of clean text (one block per line).
Output (stdout): {"results": [...one object per pair, fields as fintel's Comparison...],
"seconds": CPU time spent computing, excluding start-up and reading the files}.
"""

import difflib
import json
import re
import sys
import time

from sklearn.feature_extraction.text import CountVectorizer
from sklearn.metrics.pairwise import cosine_similarity

TOP_SENTENCES = 10
SPLIT = re.compile(r"(?<=[.!?])[ \t\r]")
WORD = re.compile(r"[A-Za-z]+")


def sentences(text):
    """(text as written, words) for every sentence with at least one word."""
    out = []
    for line in text.split("\n"):
        for part in SPLIT.split(line):
            words = [w.lower() for w in WORD.findall(part) if len(w) >= 2]
            if words:
                out.append((part.strip(" \t\r"), tuple(words)))
    return out


def edit_distance(a, b):
    """Minimum insertions plus deletions turning a into b (Myers 1986)."""
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return n + m
    v = {1: 0}
    for d in range(n + m + 1):
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and v[k - 1] < v[k + 1]):
                x = v[k + 1]
            else:
                x = v[k - 1] + 1
            y = x - k
            while x < n and y < m and a[x] == b[y]:
                x += 1
                y += 1
            v[k] = x
            if x >= n and y >= m:
                return d
    return n + m


def only_in(mine, other_keys, stop):
    count = 0
    seen = set()
    candidates = []
    for position, (text, key) in enumerate(mine):
        if key in other_keys:
            continue
        count += 1
        if key not in seen:
            seen.add(key)
            substance = sum(1 for w in key if w not in stop)
            candidates.append((-substance, position, text))
    candidates.sort()
    return count, [text for _, _, text in candidates[:TOP_SENTENCES]]


def compare(old_text, new_text, stop):
    old = sentences(old_text)
    new = sentences(new_text)
    old_keys = [key for _, key in old]
    new_keys = [key for _, key in new]
    old_terms = [w for key in old_keys for w in key if w not in stop]
    new_terms = [w for key in new_keys for w in key if w not in stop]

    if not old_terms and not new_terms:
        cosine = 1.0
    elif not old_terms or not new_terms:
        cosine = 0.0
    else:
        vectorizer = CountVectorizer(analyzer=lambda terms: terms)
        counts = vectorizer.fit_transform([old_terms, new_terms])
        cosine = float(cosine_similarity(counts[0], counts[1])[0, 0])

    old_set, new_set = set(old_terms), set(new_terms)
    union = old_set | new_set
    jaccard = len(old_set & new_set) / len(union) if union else 1.0

    total_sentences = len(old_keys) + len(new_keys)
    if total_sentences:
        min_edit = 1.0 - edit_distance(old_keys, new_keys) / total_sentences
    else:
        min_edit = 1.0

    words_old = sum(len(key) for key in old_keys)
    words_new = sum(len(key) for key in new_keys)
    matcher = difflib.SequenceMatcher(None, old_keys, new_keys, autojunk=False)
    kept = sum(
        len(old_keys[i + offset])
        for i, _, size in matcher.get_matching_blocks()
        for offset in range(size)
    )
    total_words = words_old + words_new
    simple = 2 * kept / total_words if total_words else 1.0

    added_count, added = only_in(new, set(old_keys), stop)
    removed_count, removed = only_in(old, set(new_keys), stop)
    return {
        "cosine": cosine,
        "jaccard": jaccard,
        "min_edit": min_edit,
        "simple": simple,
        "length_change": (words_new - words_old) / words_old if words_old else None,
        "words_old": words_old,
        "words_new": words_new,
        "sentences_old": len(old_keys),
        "sentences_new": len(new_keys),
        "added_count": added_count,
        "removed_count": removed_count,
        "added": added,
        "removed": removed,
    }


def read(path):
    # newline="" keeps carriage returns as they are, as fintel reads them.
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def main():
    request = json.load(sys.stdin)
    stop = {w.strip() for w in read(request["stop_words"]).split("\n") if w.strip()}
    texts = [(read(p["old"]), read(p["new"])) for p in request["pairs"]]
    started = time.process_time()
    results = [compare(old, new, stop) for old, new in texts]
    seconds = time.process_time() - started
    json.dump({"results": results, "seconds": seconds}, sys.stdout)


if __name__ == "__main__":
    main()
