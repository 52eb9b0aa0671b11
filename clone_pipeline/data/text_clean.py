"""Text normalisation: Unicode, stray HTML, invisible characters and whitespace."""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

_INVISIBLE = re.compile("[\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\ufeff\u00ad]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*")
_TAG_HINT = re.compile(r"<[A-Za-z!/]|&[#A-Za-z0-9]+;")
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")


class _TextExtractor(HTMLParser):
    """Keeps text content; drops tags and everything inside script/style."""

    _SKIP = {"script", "style", "noscript", "iframe", "object"}
    _BREAK = {"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skip_depth += 1
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP and self._skip_depth:
            self._skip_depth -= 1
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skip_depth:
            self.parts.append(data)


def strip_html(text: str) -> str:
    """Text content of *text* with tags removed and script/style bodies dropped."""
    if not _TAG_HINT.search(text):
        return text
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return html.unescape("".join(parser.parts))


def normalise_text(text: str) -> str:
    """NFKC-free normalisation that keeps the writer's characters but not markup or noise.

    NFC (not NFKC, which would rewrite typographic choices), no HTML, no control or
    zero-width characters, single spaces, at most one blank line between paragraphs.
    """
    text = unicodedata.normalize("NFC", text)
    text = strip_html(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", _CONTROL.sub("", text))
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def word_count(text: str) -> int:
    """Words made of letters or digits (emoji and punctuation alone do not count)."""
    return len(_WORD.findall(text))
