#!/usr/bin/env python3
"""Writes the tokenizer comparison corpus: JSON Lines {"text": ...}, deterministic.

Usage: make_corpus.py OUT.jsonl [N_DOCS] [REPO_ROOT]

Each document mixes pieces drawn with a fixed seed from: English (the fortunes corpus, Debian's
`fortunes` package), code (this repository's own C++ and Python sources), CJK, Korean, Arabic,
Devanagari, emoji (with ZWJ sequences and skin tones), combining marks (decomposed accents, Zalgo
stacks), numbers, very long words, whitespace runs (tabs, newlines, NBSP, ideographic space),
special and added tokens written as text, and raw invalid UTF-8 bytes (truncated sequences,
overlongs, surrogates, stray continuation bytes).
"""
import glob
import json
import os
import random
import sys

out_path = sys.argv[1]
n_docs = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
root = sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.path.dirname(__file__), "..", "..")
rng = random.Random(20261206)

fortunes = []
for path in sorted(glob.glob("/usr/share/games/fortunes/*")):
    if path.endswith(".dat") or os.path.isdir(path) or os.path.islink(path):
        continue
    with open(path, encoding="utf-8", errors="replace") as f:
        fortunes += [p.strip("\n") for p in f.read().split("\n%\n") if p.strip()]
if not fortunes:
    sys.exit("make_corpus.py: no fortunes in /usr/share/games/fortunes (apt install fortunes)")

code = []
for pattern in ("framework/**/*.cc", "framework/**/*.h", "tools/**/*.py", "tests/**/*.py"):
    for path in sorted(glob.glob(os.path.join(root, pattern), recursive=True)):
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
        for i in range(0, len(lines), 25):
            code.append("\n".join(lines[i:i + 25]))

words = {
    "cjk": ["北京", "東京", "中华人民共和国", "漢字", "日本語の文章です。", "我爱自然语言处理", "机器学习",
            "ひらがな", "カタカナ", "汉语拼音", "繁體中文", "「引用」", "〜", "、", "。", "１２３"],
    "korean": ["한국어", "안녕하세요", "대한민국", "서울특별시", "자연어 처리", "감사합니다", "ㄱㄴㄷ", "한글"],
    "arabic": ["العربية", "مرحبا بالعالم", "اللغة", "كتاب", "٠١٢٣٤٥٦٧٨٩", "السلام عليكم", "ﷺ"],
    "indic": ["हिन्दी", "नमस्ते", "भारत", "தமிழ்", "বাংলা", "ગુજરાતી"],
    "emoji": ["😀", "🎉", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🤖", "🦀", "🇯🇵", "1️⃣", "🥰", "🫠"],
    "marks": ["e\u0301", "a\u0308", "n\u0303", "Z\u0351\u0352\u0353\u0354", "ç", "café", "naïve",
              "Ångström", "ﬁ", "Ⅻ", "①", "ｈｅｌｌｏ", "İstanbul", "ΣΊΣΥΦΟΣ", "straße", "ǅ"],
    "other": ["Привет, мир", "Ελληνικά", "עברית", "ไทย", "Tiếng Việt", "ქართული", "Հայերեն"],
    "numbers": ["3.14159", "1,000,000", "2026-12-06", "0x7fffffff", "1e-10", "12345678901234567890"],
}
specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|endoftext|>", "<|eot_id|>",
            "<|im_start|>", "<|im_end|>", "<s>", "</s>", "<unk>", "<pad>", "[CLS]", "[SEP]",
            "[MASK]", "[UNK]", "<mask>", "<|reserved_special_token_7|>", "<|fim_prefix|>"]
spaces = ["  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\u00a0", "\u3000", "\u2003", "\t \t",
          "    ", "\n\n\n\n", "\u200b", "\u2028"]
invalid = [b"\xff", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc0\xaf", b"\xed\xa0\x80",
           b"\x80\x80", b"\xfe\xfe", b"\xf4\x90\x80\x80", b"\xe0\x80\x80"]


def long_word():
    kind = rng.randrange(4)
    if kind == 0:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(60, 400)))
    if kind == 1:
        return "Pneumonoultramicroscopicsilicovolcanoconiosis" * rng.randint(2, 6)
    if kind == 2:
        return rng.choice(["=", "-", "*", "_", "#", "0", "a"]) * rng.randint(50, 300)
    return "".join(rng.choice(words["cjk"] + words["korean"]) for _ in range(rng.randint(20, 80)))


def piece():
    r = rng.random()
    if r < 0.35:
        return rng.choice(fortunes)
    if r < 0.50:
        return rng.choice(code)
    if r < 0.78:
        group = rng.choice(list(words))
        return " ".join(rng.choice(words[group]) for _ in range(rng.randint(1, 8)))
    if r < 0.84:
        return long_word()
    if r < 0.92:
        return rng.choice(specials)
    return rng.choice(spaces)


with open(out_path, "wb") as out:
    for d in range(n_docs):
        parts = [piece() for _ in range(rng.randint(1, 12))]
        seps = [rng.choice([" ", "", "\n", rng.choice(spaces)]) for _ in parts]
        text = "".join(p + s for p, s in zip(parts, seps))
        # Raw invalid UTF-8 in about one document in twelve (as surrogate escapes until written).
        if rng.random() < 0.08:
            at = rng.randint(0, len(text))
            bad = rng.choice(invalid).decode("utf-8", errors="surrogateescape")
            text = text[:at] + bad + text[at:]
        line = json.dumps({"text": text}, ensure_ascii=False).encode("utf-8", "surrogateescape")
        out.write(line + b"\n")
