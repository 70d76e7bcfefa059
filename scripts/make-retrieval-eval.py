#!/usr/bin/env python3
"""Builds the knowledge base's labelled retrieval evaluation set.

    python3 scripts/make-retrieval-eval.py ../shared/bench/data \
        crates/strata/tests/fixtures/retrieval_eval.json.gz

Corpus: the paragraphs (docstring, comment and language-reference paragraphs)
of `base.jsonl.gz` from ../shared/bench (real text of the Python 3.11
standard library, see its README), grouped into one Markdown document per
module (`source`), the module name as its title and the paragraphs in the
dataset's order (by id). The documents are the modules the questions below
are about plus distractor modules drawn with a fixed seed, up to ~600 KB of
text, so that the evaluation runs in CI in a few minutes with the local
embedder.

Two query sets, each labelled with the one document that answers it:
- `questions`: natural-language questions written by hand for this set
  (paraphrases, not copied sentences) about what a module does (50 about
  the modules that made the corpus, then 50 more, mostly about the
  distractor modules, added with the splits);
- `passages`: the texts of `query.jsonl.gz` (paragraphs and windows of 1-3
  sentences, never rows of the base set) whose module is in the corpus,
  labelled with that module: "which document is this passage from", the
  known-item case where exact words matter.

Passages are held out from the corpus by construction. The dataset's query
rows are disjoint from its base rows, but a query *window* is usually a
sentence or two of a base *paragraph*, so it would be verbatim text of its
own answer document. For every passage, the paragraphs of its module that
share the most word 5-grams with it are left out of the corpus (at most
MAX_HELD_OUT per passage) until the passage is no longer near-verbatim text
of its document; a passage that cannot be made so is dropped. Then
`verify()` checks every passage against the finished documents and fails
the build if any is near-verbatim text of its answer document:
sharing a run of MAX_RUN or more consecutive words with it, or more than
MAX_SHARE of its word 5-grams (words: lower-cased `\\w+` runs).

Splits: each query set is split in two, `dev` and `test`, with a fixed seed
(passages stratified by their kind: paragraph, window of 1, 2 or 3
sentences). Every choice of fusion and parameters is made on `dev`; `test`
plays no part in any choice and is what the CI test holds hybrid search to
(crates/strata/tests/retrieval_quality.rs, bench/retrieval.sh).

Deterministic: the same input gives the same file.
"""
import collections
import gzip
import json
import random
import re
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
    # Added with the dev/test split, written (like the ones above) from what
    # each module is for, before any search had run on them; most are about
    # the distractor modules, so that the test half has 50 questions.
    ("Detect Python files whose indentation is ambiguous because tabs and spaces are mixed", "tabnanny"),
    ("Split Python source text into tokens such as names, operators and strings", "tokenize"),
    ("Which lines of my program ran, and how many times each?", "trace"),
    ("Find out which functions of my program use the most time with a deterministic profiler", "profile"),
    ("Complete variable and attribute names with the Tab key in the interactive prompt", "rlcompleter"),
    ("How do .pth files in site-packages add directories to the import path?", "site"),
    ("Turn warnings into exceptions or hide them with filters", "warnings"),
    ("Find test modules in a folder and collect the test cases they define", "unittest.loader"),
    ("Inspect the compiler's scopes to tell whether a name in a function is local, global or free", "symtable"),
    ("Encode text so that special bytes become = followed by two hexadecimal digits, as in MIME mail", "quopri"),
    ("Declare methods that every concrete subclass must implement, or it cannot be instantiated", "abc"),
    ("Give up on an awaited operation after a number of seconds in async code", "asyncio.timeouts"),
    ("Run blocking functions concurrently on a pool of worker threads", "concurrent.futures.thread"),
    ("Let several processes read and write the same block of memory without copying it", "multiprocessing.shared_memory"),
    ("Pass open file descriptors or handles to another process", "multiprocessing.reduction"),
    ("An editable text box in a terminal window with Emacs-like key bindings", "curses.textpad"),
    ("Build an RPM package from a Python project for Red Hat systems", "distutils.command.bdist_rpm"),
    ("Create a directory with all its missing parents, in the old distutils package", "distutils.dir_util"),
    ("Find Visual Studio 2008 in the Windows registry to compile C extensions", "distutils.msvc9compiler"),
    ("Settings that decide how email header lines are folded and whether a malformed message raises an error", "email._policybase"),
    ("Create a MIME message made of several parts, such as text plus attachments", "email.mime.multipart"),
    ("Turn the raw text of an email, headers and body, into a message object", "email.parser"),
    ("Split an address like 'Jane Doe <jane@example.com>' into the name and the address", "email.utils"),
    ("Convert a domain name with accented letters into the ASCII form used by DNS", "encodings.idna"),
    ("Transfer files to and from a remote server over the File Transfer Protocol", "ftplib"),
    ("Parse command-line switches the way the Unix C function does, with short and long options", "getopt"),
    ("Log in to a mail server and search or fetch the messages in a mailbox folder", "imaplib"),
    ("A string that compares equal to another regardless of upper or lower case", "importlib.metadata._text"),
    ("Open data files that are shipped inside a package, through a minimal reader interface", "importlib.resources.simple"),
    ("Write a custom 2to3 fixer that matches a pattern in the syntax tree and transforms it", "lib2to3.fixer_base"),
    ("Translate Python 2 imports of urllib2 into their Python 3 locations", "lib2to3.fixes.fix_urllib"),
    ("A readable stream that decompresses data on the fly and supports seeking", "_compression"),
    ("Compiler flags for building universal binaries on macOS with several architectures", "_osx_support"),
    ("Middleware that checks whether a WSGI application and server both follow the specification", "wsgiref.validate"),
    ("Which parts make up the WSGI reference library: servers, handlers, utilities?", "wsgiref"),
    ("A dictionary-like object for the HTTP response headers of a WSGI application", "wsgiref.headers"),
    ("Callbacks that receive the start and end of each element while an XML file is being parsed", "xml.sax.handler"),
    ("Pop up a small Tk window asking the user to type in a number", "tkinter.simpledialog"),
    ("A viewer that lists the turtle graphics example programs and runs the one you pick", "turtledemo.__main__"),
    ("Interfaces for the byte streams and UDP endpoints that asyncio protocols write to", "asyncio.transports"),
    ("Get notified in an event loop when a child process started by it exits, on Linux", "asyncio.unix_events"),
    ("An awaitable placeholder for a result that will be set later, with done callbacks, in asyncio", "asyncio.futures"),
    ("An event loop built on select or epoll that waits until sockets are readable or writable", "asyncio.selector_events"),
    ("The distutils command that compiles everything needed to install: pure modules, C extensions and scripts", "distutils.command.build"),
    ("Byte-compile a list of Python files and convert slash-separated paths to the native form", "distutils.util"),
    ("Wrap a long paragraph so no line is wider than a given number of characters", "textwrap"),
    ("Find the words in a list that are most similar to a misspelled word", "difflib"),
    ("Tell whether an IP address is private, loopback or multicast", "ipaddress"),
    ("Safely evaluate a string containing a Python literal such as a list or dict", "ast"),
    ("Print the days of a month laid out as a calendar", "calendar"),
]
# The first FIRST_QUESTIONS were written before the split; both groups are
# split half and half.
FIRST_QUESTIONS = 50

MAX_CORPUS_CHARS = 600_000
MAX_DISTRACTOR_CHARS = 12_000
MIN_PARAGRAPHS = 8
# Near-verbatim: a shared run of this many words, or more than this share of
# the query's word 5-grams found in its answer document.
NGRAM = 5
MAX_RUN = 8
MAX_SHARE = 0.2
# Paragraphs left out of the corpus for one passage, at most.
MAX_HELD_OUT = 3
# Every document keeps at least this share of its paragraphs.
MIN_KEPT = 0.6
SPLIT_SEED = 20240610
CORPUS_SEED = 42

WORD = re.compile(r"\w+")


def words(text):
    return WORD.findall(text.lower())


def ngrams(ws, n):
    n = min(n, len(ws))
    return {tuple(ws[i : i + n]) for i in range(len(ws) - n + 1)} if n else set()


def overlap(query_words, doc_words):
    """(longest run of consecutive words shared, share of the query's word
    5-grams found in the document; a query under 5 words counts whole)."""
    run, n = 0, 1
    while n <= len(query_words) and ngrams(query_words, n) & ngrams(doc_words, n):
        run, n = n, n + 1
    grams = ngrams(query_words, NGRAM)
    doc = ngrams(doc_words, min(NGRAM, len(query_words)))
    share = len(grams & doc) / len(grams) if grams else 0.0
    return run, share


def near_verbatim(query_words, doc_words):
    run, share = overlap(query_words, doc_words)
    return run >= MAX_RUN or share > MAX_SHARE


def read_jsonl(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def document_text(module, paragraphs):
    return f"# {module}\n\n" + "\n\n".join(paragraphs) + "\n"


def hold_out(passage, paragraphs, held):
    """Paragraph indexes to leave out (beyond `held`) so that `passage` is
    not near-verbatim text of the module's document, or None if that takes
    more than MAX_HELD_OUT of them."""
    qw = words(passage)
    grams = ngrams(qw, NGRAM)
    extra = set()
    while True:
        kept = [p for i, p in enumerate(paragraphs) if i not in held and i not in extra]
        if not near_verbatim(qw, words(" ".join(kept))):
            return extra
        if len(extra) == MAX_HELD_OUT:
            return None
        # The paragraph sharing the longest run, then the most 5-grams.
        best = max(
            (i for i in range(len(paragraphs)) if i not in held and i not in extra),
            key=lambda i: (overlap(qw, words(paragraphs[i]))[0], len(grams & ngrams(words(paragraphs[i]), NGRAM)), -i),
        )
        extra.add(best)


def verify(documents, passages, questions):
    """Fails the build if any passage is near-verbatim text of its answer
    document. Returns the worst (run, share) seen per set (the hand-written
    questions are paraphrases: their overlap is shown, not held to the rule,
    since a 7-word question that shares "a deep copy of" shares a quarter
    of its 5-grams)."""
    text = {d["key"]: words(d["text"]) for d in documents}
    worst = {}
    for name, queries in (("passages", passages), ("questions", questions)):
        w = (0, 0.0)
        for q in queries:
            run, share = overlap(words(q["query"]), text[q["document"]])
            if name == "passages" and (run >= MAX_RUN or share > MAX_SHARE):
                raise SystemExit(
                    f"{name}: query is near-verbatim text of {q['document']} "
                    f"(shares {run} consecutive words, {share:.0%} of its {NGRAM}-grams): {q['query']!r}"
                )
            w = (max(w[0], run), max(w[1], share))
        worst[name] = w
    return worst


def check_the_check():
    """verify() must refuse a passage copied from its document, and one
    with a long copied stretch, and accept a paraphrase."""
    doc = [{"key": "m.md", "text": "# m\n\nReturn a new list containing all items from the iterable in ascending order.\n"}]

    def refuses(text):
        try:
            verify(doc, [{"query": text, "document": "m.md"}], [])
        except SystemExit:
            return True
        return False

    assert refuses("Return a new list containing all items from the iterable in ascending order.")
    assert refuses("It will return a new list containing all items from the iterable, sorted.")
    assert not refuses("Sort the elements of a sequence into a fresh list, smallest first.")


def split(items, strata):
    """Assigns `split: dev|test` to each item: within each stratum (in sorted
    order) the items are shuffled with SPLIT_SEED and dealt out alternately,
    continuing across strata, so both halves have the same mix and sizes
    that differ by at most one."""
    rng = random.Random(SPLIT_SEED)
    by = collections.defaultdict(list)
    for i, s in enumerate(strata):
        by[s].append(i)
    turn = 0
    for s in sorted(by):
        idx = by[s]
        rng.shuffle(idx)
        for i in idx:
            items[i]["split"] = ("dev", "test")[turn % 2]
            turn += 1
    return items


def main():
    data, out = sys.argv[1], sys.argv[2]
    check_the_check()
    base = read_jsonl(f"{data}/base.jsonl.gz")
    queries = read_jsonl(f"{data}/query.jsonl.gz")
    paragraphs = collections.defaultdict(list)
    for row in sorted(base, key=lambda r: r["id"]):
        if row["kind"].endswith("-paragraph"):
            paragraphs[row["source"]].append(row["text"])

    wanted = []
    for _, module in QUESTIONS[:FIRST_QUESTIONS]:
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
    random.Random(CORPUS_SEED).shuffle(others)
    for m in others:
        n = sum(len(t) + 2 for t in paragraphs[m])
        if size + n > MAX_CORPUS_CHARS:
            continue
        wanted.append(m)
        size += n
    modules = sorted(wanted)
    in_corpus = set(modules)
    for _, module in QUESTIONS:
        if module not in in_corpus:
            raise SystemExit(f"a question is about {module}, which is not in the corpus")

    # Passages, held out from the corpus by construction.
    held = collections.defaultdict(set)
    passages, dropped = [], collections.Counter()
    for q in sorted(queries, key=lambda r: r["id"]):
        m = q["source"]
        if m not in in_corpus:
            continue
        extra = hold_out(q["text"], paragraphs[m], held[m])
        if extra is None or len(paragraphs[m]) - len(held[m] | extra) < MIN_KEPT * len(paragraphs[m]):
            dropped[q["kind"].split("-")[1]] += 1
            continue
        held[m] |= extra
        passages.append({"query": q["text"], "document": f"{m}.md", "kind": q["kind"]})

    documents = [
        {
            "key": f"{m}.md",
            "text": document_text(m, [p for i, p in enumerate(paragraphs[m]) if i not in held[m]]),
        }
        for m in modules
    ]
    questions = [{"query": q, "document": f"{m}.md"} for q, m in QUESTIONS]
    split(questions, [i >= FIRST_QUESTIONS for i in range(len(questions))])
    split(passages, [p["kind"].split("-")[1] for p in passages])
    worst = verify(documents, passages, questions)

    result = {
        "about": "Labelled retrieval evaluation; made by scripts/make-retrieval-eval.py "
        "from pystdlib-minilm-50k base.jsonl.gz / query.jsonl.gz",
        "near_verbatim_rule": {
            "max_shared_run_words": MAX_RUN - 1,
            "max_share_of_5grams": MAX_SHARE,
        },
        "held_out_paragraphs": sum(len(h) for h in held.values()),
        "split_seed": SPLIT_SEED,
        "documents": documents,
        "questions": questions,
        "passages": passages,
    }
    # No name and no time in the gzip header: the same input, the same bytes.
    with open(out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
        f.write(json.dumps(result, ensure_ascii=False, indent=0).encode("utf-8"))
    chars = sum(len(d["text"]) for d in documents)
    kinds = collections.Counter(p["kind"].split("-")[1] for p in passages)
    splits = {
        name: collections.Counter(q["split"] for q in qs)
        for name, qs in (("questions", questions), ("passages", passages))
    }
    print(
        f"{len(documents)} documents ({chars} chars; {result['held_out_paragraphs']} paragraphs held out "
        f"for passages), {len(questions)} questions, {len(passages)} passages "
        f"({dict(sorted(kinds.items()))}; dropped {dict(sorted(dropped.items()))}) -> {out}\n"
        f"splits: {({k: dict(sorted(v.items())) for k, v in splits.items()})}\n"
        f"verbatim check passed; longest shared run / largest 5-gram share with the answer document: "
        + ", ".join(f"{k} {r} words / {s:.0%}" for k, (r, s) in worst.items()),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
