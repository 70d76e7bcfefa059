#!/usr/bin/env python3
"""Builds the knowledge base's labelled retrieval evaluation set.

    python3 scripts/make-retrieval-eval.py ../shared/bench/data \
        crates/strata/tests/fixtures/retrieval_eval.json.gz

Corpus: the paragraphs (docstring, comment and language-reference paragraphs)
of `base.jsonl.gz` from ../shared/bench (real text of the Python 3.11
standard library, see its README), grouped into one Markdown document per
module (`source`), the module name as its title and the paragraphs in file
order. The documents are the modules the questions below are about plus
distractor modules drawn with a fixed seed, up to ~600 KB of text, so that
the evaluation runs in CI in under a minute with the local embedder.

Two query sets, each labelled with the one document that answers it:
- `questions`: natural-language questions written by hand for this set
  (paraphrases, not copied sentences) about what a module does;
- `passages`: held-out sentences and paragraphs of `query.jsonl.gz` (never in
  the base set: the dataset's base and query pools are disjoint) whose module
  is in the corpus, labelled with that module — "which document is this
  passage from", the known-item case where exact words matter.

Deterministic: the same input gives the same file.
"""
import collections
import gzip
import json
import random
import sys

# (question, module that answers it)
QUESTIONS = [
    ("How can I pretty-print a JSON document from the command line?", "json"),
    ("What happens when a circular reference is found while encoding objects to JSON?", "json"),
    ("How do I guess the delimiter of a comma separated file from a sample?", "csv"),
    ("How do I copy a whole directory tree recursively?", "shutil"),
    ("Move a file or folder somewhere else like the mv command", "shutil"),
    ("How can I create a temporary directory that is removed automatically?", "tempfile"),
    ("Get the n smallest items of a list using a priority queue", "heapq"),
    ("Insert an element into a sorted list keeping it sorted", "bisect"),
    ("How do I compute the median or the standard deviation of my data?", "statistics"),
    ("Check whether an IP network is a subnet of another network", "ipaddress"),
    ("How do I open a gzip compressed tar archive for reading?", "tarfile"),
    ("How do I add a boolean flag option to my command line program?", "argparse"),
    ("How many leap years are there between two years?", "calendar"),
    ("Remove the common indentation from a multi-line string", "textwrap"),
    ("Encode binary data with a URL-safe alphabet", "base64"),
    ("Compute a keyed message authentication code for a message", "hmac"),
    ("Generate a secure random token for a password reset link", "secrets"),
    ("How do I create a universally unique identifier from a random number?", "uuid"),
    ("Send an email through an SMTP server with authentication", "smtplib"),
    ("Split a URL into its scheme, host, path and query string", "urllib.parse"),
    ("How do I escape a string so it can be used safely in a shell command?", "shlex"),
    ("Represent a rational number exactly as numerator and denominator", "fractions"),
    ("Pick a random element from a sequence or shuffle a list", "random"),
    ("Run a function at a scheduled time later with an event scheduler", "sched"),
    ("A thread safe FIFO queue for passing work between threads", "queue"),
    ("Keep a reference to an object without preventing it from being garbage collected", "weakref"),
    ("Find all file names matching a wildcard pattern like *.txt", "glob"),
    ("Read a password from the terminal without echoing it", "getpass"),
    ("Convert a color between RGB and HSV", "colorsys"),
    ("Measure how long a small snippet of code takes to run", "timeit"),
    ("Write a context manager with a generator function and the with statement", "contextlib"),
    ("Cache the results of a function so repeated calls are fast", "functools"),
    ("Make a deep copy of a nested object", "copy"),
    ("Serialize Python objects to a byte stream and load them back", "pickle"),
    ("A persistent dictionary stored on disk", "shelve"),
    ("Read settings from an INI file with sections", "configparser"),
    ("Sort the nodes of a dependency graph so each comes after its predecessors", "graphlib"),
    ("Automatically generate __init__ and __repr__ for a class with fields", "dataclasses"),
    ("Open a web page in the user's default browser", "webbrowser"),
    ("Guess the content type of a file from its file name extension", "mimetypes"),
    ("Compress data with the LZMA or xz algorithm", "lzma"),
    ("Rotate log files when they reach a certain size", "logging.handlers"),
    ("Call a method on a remote server using XML over HTTP", "xmlrpc.client"),
    ("Start a new process, connect to its pipes and get its return code", "subprocess"),
    ("Step through a program line by line in a debugger and set breakpoints", "pdb"),
    ("Compare two sequences and produce a unified diff of the changes", "difflib"),
    ("Draw shapes by moving a pen around on a canvas", "turtle"),
    ("Parse Python source code into an abstract syntax tree", "ast"),
    ("Define a set of symbolic names bound to unique constant values", "enum"),
    ("Read the cookies sent by a web server and return them on later requests", "http.cookiejar"),
]

MAX_CORPUS_CHARS = 600_000
MAX_DISTRACTOR_CHARS = 12_000
MIN_PARAGRAPHS = 8
MAX_PASSAGES = 200


def read_jsonl(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def main():
    data, out = sys.argv[1], sys.argv[2]
    base = read_jsonl(f"{data}/base.jsonl.gz")
    queries = read_jsonl(f"{data}/query.jsonl.gz")
    paragraphs = collections.defaultdict(list)
    for row in sorted(base, key=lambda r: r["id"]):
        if row["kind"].endswith("-paragraph"):
            paragraphs[row["source"]].append(row["text"])

    wanted = []
    for _, module in QUESTIONS:
        if module not in paragraphs:
            raise SystemExit(f"no paragraphs for {module}")
        if module not in wanted:
            wanted.append(module)
    size = sum(len(t) + 2 for m in wanted for t in paragraphs[m])
    others = sorted(
        m
        for m, ps in paragraphs.items()
        if m not in wanted
        and m != "pydoc_data.topics"
        and len(ps) >= MIN_PARAGRAPHS
        and sum(len(t) for t in ps) <= MAX_DISTRACTOR_CHARS
    )
    random.Random(42).shuffle(others)
    for m in others:
        n = sum(len(t) + 2 for t in paragraphs[m])
        if size + n > MAX_CORPUS_CHARS:
            continue
        wanted.append(m)
        size += n
    modules = sorted(wanted)
    documents = [
        {"key": f"{m}.md", "text": f"# {m}\n\n" + "\n\n".join(paragraphs[m]) + "\n"}
        for m in modules
    ]
    in_corpus = set(modules)
    passages = [
        {"query": q["text"], "document": f"{q['source']}.md", "kind": q["kind"]}
        for q in sorted(queries, key=lambda r: r["id"])
        if q["source"] in in_corpus
    ][:MAX_PASSAGES]
    result = {
        "about": "Labelled retrieval evaluation; made by scripts/make-retrieval-eval.py "
        "from pystdlib-minilm-50k base.jsonl.gz / query.jsonl.gz",
        "documents": documents,
        "questions": [{"query": q, "document": f"{m}.md"} for q, m in QUESTIONS],
        "passages": passages,
    }
    with gzip.GzipFile(out, "wb", mtime=0) as f:
        f.write(json.dumps(result, ensure_ascii=False, indent=0).encode("utf-8"))
    print(
        f"{len(documents)} documents ({size} chars), {len(QUESTIONS)} questions, "
        f"{len(passages)} passages -> {out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
