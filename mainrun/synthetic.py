"""
Synthetic Hacker-News-like titles, for offline runs and tests.

A few dozen templates filled from small word lists: the grammar repeats a lot,
so a tiny language model has real structure to pick up, unlike uniform noise.
"""

import random
import re

# word lists, one per slot; each {slot} in a template draws from the list of that name
WORDS = {
    "lang": "Python Rust Go C++ TypeScript JavaScript Zig Haskell OCaml Elixir Java Kotlin Swift Ruby Lua C".split(),
    "tool": ("Postgres SQLite Kubernetes Docker Linux macOS Redis Nginx Git Emacs Vim WebAssembly "
             "GPT-4 Llama React Firefox Chrome FreeBSD Kafka DuckDB Terraform systemd").split(),
    "name": ("Tinybase Hexflow Quill Ferrite Drift Lumen Cobalt Pebble Sparrow Nimbus Atlas Orbit "
             "Mosaic Beacon Kiln Tern Parcel Relay").split(),
    "company": "Google Apple Microsoft Meta Amazon Stripe OpenAI Cloudflare GitHub Mozilla Intel Nvidia Tesla Valve".split(),
    "thing": ("database|compiler|text editor|web framework|terminal emulator|static site generator|"
              "task queue|search engine|key-value store|package manager|browser extension|"
              "CLI tool|game engine|note-taking app|password manager|spreadsheet").split("|"),
    "noun": ("software engineering|open source|remote work|type systems|garbage collection|"
             "technical debt|code review|distributed systems|machine learning|the web|"
             "startups|hiring|memory safety|caching|programming").split("|"),
    "adj": "fast tiny simple open-source self-hosted minimal typed local-first privacy-friendly lightweight".split(),
    "who": "developers|startups|small teams|data scientists|hobbyists|students|researchers|sysadmins".split("|"),
    "verb": "learn debug deploy test document scale monitor refactor".split(),
    "bad": "harmful|overrated|dead|underrated|hard|broken|inevitable|a trap".split("|"),
    "topic": ("cryptography|compilers|the TCP/IP stack|floating point|Unicode|regular expressions|"
              "the Linux kernel|CPU caches|SAT solvers|B-trees").split("|"),
    "field": "physics economics biology history mathematics psychology".split(),
    "site": "nytimes.com github.com arxiv.org lwn.net bbc.co.uk theverge.com wired.com".split(),
    "yc": ["YC W23", "YC S22", "YC W24", "YC S23", "YC W21"],
    "money": ["$5M", "$12M", "$100M", "$1B", "$40k", "$2.5M"],
    "big": ["10x", "100k", "1M", "3x", "50%", "90%", "1,000", "10,000"],
    "quote": ["“move fast and break things”", "“boring technology”", "\"worse is better\"",
              "“just use Postgres”", "\"it works on my machine\"", "“the cloud”"],
}
# slots filled by small generators rather than lists
GEN = {
    "ver": lambda r: f"{r.randint(0, 4)}.{r.randint(0, 20)}",
    "semver": lambda r: f"v{r.randint(0, 3)}.{r.randint(0, 12)}.{r.randint(0, 9)}",
    "year": lambda r: str(r.randint(1968, 2023)),
    "n": lambda r: str(r.choice([2, 3, 5, 7, 10, 12, 15, 20, 30, 100])),
}
TEMPLATES = [
    "Show HN: {name} – a {adj} {thing} for {who}",
    "Show HN: {name}, a {thing} written in {lang}",
    "Show HN: I built a {thing} in {lang} over the weekend",
    "Show HN: {name} – {tool} but {adj}",
    "Ask HN: How do you {verb} {lang} code at work?",
    "Ask HN: What is your favorite {thing}?",
    "Ask HN: Is {noun} {bad}?",
    "Ask HN: Who is hiring? ({year})",
    "Ask HN: How did you learn {topic}?",
    "Tell HN: {company} locked me out of my account",
    "Tell HN: {tool} {ver} broke my {thing}",
    "Launch HN: {name} ({yc}) – {adj} {thing} for {who}",
    "Launch HN: {name} ({yc}) – {tool} for {who}",
    "Why {noun} is {bad}",
    "Why we moved from {tool} to {tool}",
    "Why {company} is rewriting {tool} in {lang}",
    "{tool} {ver} released",
    "{lang} {ver} is out",
    "{name} {semver}: {adj} {thing} in {lang}",
    "The {noun} of {noun} ({year})",
    "The history of {topic} ({year})",
    "A gentle introduction to {topic} [pdf]",
    "{topic} for {who} [pdf]",
    "{lang} vs. {lang}",
    "{lang} vs. {lang}: a {thing} benchmark",
    "{company} raises {money} to build a {adj} {thing}",
    "{company} to lay off {big} employees",
    "{company} is killing {tool}",
    "How we made our {thing} {big} faster with {lang}",
    "How {tool} stores data on disk",
    "I rewrote my {thing} in {lang} and it is {big} faster",
    "{big} lines of {lang} later: lessons from {noun}",
    "{n} things I wish I knew about {tool}",
    "{n} years of {noun}",
    "What every programmer should know about {topic} ({year})",
    "Against {quote}",
    "In defense of {quote}",
    "{quote} considered {bad}",
    "{tool} is all you need",
    "Writing a {thing} from scratch in {lang}",
    "Understanding {topic}, part {n}",
    "Scientists find new link between {field} and {noun} ({site})",
    "The {field} of {noun} ({site})",
    "{company}'s new {thing}, explained ({site})",
    "Reverse engineering the {company} {thing}",
    "Lessons from running {tool} at scale",
]
# rare exotic tails, so the tokenizer sees some non-ASCII text
EXOTIC = [" 🚀", " 🔥", " (Zürich)", " in 東京", " – São Paulo", " (Москва)", " ✨", " in Kraków"]
SLOT = re.compile(r"\{(\w+)\}")
# pre-split templates: even parts are literal text, odd parts are slot names
PARTS = [SLOT.split(t) for t in TEMPLATES]


def _fill(parts, r):
    out = []
    for i, p in enumerate(parts):
        if i % 2 == 0:
            out.append(p)
        elif p in GEN:
            out.append(GEN[p](r))
        else:
            out.append(r.choice(WORDS[p]))
    return "".join(out)


def synthetic_titles(n: int, seed: int = 1337) -> list[str]:
    """n deterministic Hacker-News-like titles for offline runs and tests."""
    r = random.Random(seed)
    titles = []
    while len(titles) < n:
        t = _fill(r.choice(PARTS), r)
        if r.random() < 0.01:
            t += r.choice(EXOTIC)
        t = t.strip()
        t = t[:1].upper() + t[1:]  # "the Linux kernel ..." -> "The Linux kernel ..."
        if 15 <= len(t) <= 120:  # rare misfits are simply redrawn
            titles.append(t)
    return titles
