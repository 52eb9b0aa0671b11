"""Detectors for where someone lives and when they were born: street addresses in English,
French, German, Dutch, Spanish, Italian and Portuguese shapes, flat and box numbers,
postcodes, and dates of birth. Each yields (start, end) character spans."""

from __future__ import annotations

import re
from collections.abc import Iterator

Spans = Iterator[tuple[int, int]]

_CAP = r"[A-ZÀ-ÖØ-Þ][\w'’.-]*"  # a capitalised word (names of streets and towns)
_STREET_SUFFIX = (r"(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct"
                  r"|Way|Place|Pl|Terrace|Close|Crescent|Gardens|Grove|Parkway|Pkwy|Square|Sq"
                  r"|Highway|Hwy|Row|Mews|Walk|Circle|Cir|Trail|Parade|Esplanade|Wynd)")
_US_STATES = ("AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO"
              "|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY")
_CA_PROVINCES = "AB|BC|MB|NB|NL|NS|NT|NU|ON|PE|QC|SK|YT"
_CA_POSTCODE = r"[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z]\s?\d[ABCEGHJ-NPRSTV-Z]\d"
_POSTCODE = (r"(?:,?\s*(?:" + _US_STATES + r")\s+\d{5}(?:-\d{4})?"  # US state + ZIP
             r"|,?\s*(?:(?:" + _CA_PROVINCES + r")\s+)?" + _CA_POSTCODE  # Canada
             + r"|,?\s*[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})")  # UK postcode
# "Bandra West, " before a town: the part of the address that names the neighbourhood.
_LOCALITY = r"(?:[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?,\s*)?"
_STREET_SHAPES = (
    # English: number, street name, suffix; then optionally flat, town and postcode.
    r"\b\d{1,5}[A-Za-z]?,?\s+(?:" + _CAP + r"\s+){1,4}" + _STREET_SUFFIX + r"\b\.?"
    r"(?:\s+(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\b)?"
    r"(?:,?\s+(?:Apt|Unit|Flat|Suite)\.?\s*#?\w+)?"
    r"(?:,\s*" + _CAP + r"(?:\s+" + _CAP + r"){0,2})?(?:" + _POSTCODE + r")?",
    # French: "12 rue de la Paix", "3 bis, avenue Foch".
    r"\b\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?i:rue|avenue|av\.|boulevard|bd|allée|chemin|impasse"
    r"|place|quai|route|cours|passage|square|faubourg|sentier|voie)\s+(?:(?:de|du|des|la|le|les|l'|d')\s*)*"
    + _CAP + r"(?:\s+(?:(?:de|du|des|la|le|l'|d')\s*)*" + _CAP + r")*",
    # German and Dutch: street name ending in its kind, then the number. ("-ring" and
    # "-damm" are left out: "Spring 1963", "During 1963".)
    r"\b[A-ZÄÖÜ][a-zäöüß-]{2,}(?:straße|strasse|str\.|weg|gasse|platz|allee|straat|laan"
    r"|gracht|plein|kade|singel|steeg)\s+\d{1,4}\s?[a-z]?\b",
    # Spanish, Italian, Portuguese: kind of street, its name, the number.
    r"\b(?i:Calle|C/|Avenida|Avda\.|Paseo|Plaza|Carrer|Via|Viale|Piazza|Corso|Largo|Rua"
    r"|Travessa)\s+(?:(?:de|del|de la|della|delle|dei|di|do|da|dos|das)\s+)?" + _CAP
    + r"(?:\s+" + _CAP + r"){0,3},?\s+(?:n\.?\s?º?\s*)?\d{1,4}\b",
    # Flats, apartments, suites and post office boxes, alone or before a street, in each
    # language above ("Appartement 12, 4 rue ...", "Wohnung 3", "piso 2º", "interno 5").
    r"\b(?i:Flat|Apartment|Apt\.?|Suite|Unit|Appartement|Appt\.?|App\.|Bâtiment|Bât\.?"
    r"|Escalier|Esc\.|Wohnung|Whg\.|Piso|Puerta|Planta|Interno|Int\.|Scala|Piano|Apartamento"
    r"|Andar)\s+(?:n[°º]\s*)?#?(?:\d{1,4}(?:[A-Z]|º|ª)?|[A-Z])(?![\w-])",
    # floors written after their number: "2º andar", "3e étage", "2. Stock"
    r"\b\d{1,2}(?:º|ª|e|ème|er|\.)?\s+(?i:andar|étage|etage|Stock|OG|piso|planta|piano)\b",
    r"\bP\.?\s?O\.?\s?Box\s+\d{1,6}\b",
    # Japanese block numbers: "1-2-3 Marunouchi".
    r"\b\d{1,2}-\d{1,2}-\d{1,3}\s+" + _CAP,
)
_POSTCODE_SHAPES = (
    # Postcodes: UK, US state + ZIP, Canada, 5-digit + town (FR, DE, ES, IT), Dutch, Australian
    # state + 4 digits, Indian PIN after a town, Japanese with its mark.
    r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[ABD-HJLNP-UW-Z]{2}\b",
    r"\b(?:" + _US_STATES + r")\s+\d{5}(?:-\d{4})?\b",
    r"\b" + _CA_POSTCODE + r"\b",
    r"(?<![\w$£€.,])\d{5}\s+" + _CAP + r"(?:[\s-]" + _CAP + r")*",
    r"\b\d{4}\s?[A-Z]{2}\s+" + _CAP,
    r"\b(?:NSW|VIC|QLD|SA|WA|TAS|ACT|NT)\s+\d{4}\b",
    r"\b" + _LOCALITY + r"(?:[A-Z][a-z]+|PIN:?)(?:,\s*|\s+-\s*|\s+)[1-9]\d{2}\s?\d{3}\b",
    r"〒\s?\d{3}-\d{4}",
)
# One scan for the streets and one for the postcodes (a seventh of the cost of one scan per
# shape). Within a scan the first shape to match at a place wins, so fuller shapes come
# first; postcodes are scanned apart because a street's town can swallow half of one
# ("Melbourne VIC" of "Melbourne VIC 3000"), and overlapping spans merge afterwards.
_ADDRESSES = tuple(re.compile("|".join(f"(?:{shape})" for shape in shapes))
                   for shapes in (_STREET_SHAPES, _POSTCODE_SHAPES))

_MONTHS = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?"
           r"|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
# The months of the other languages the redactor supports, in full (FR, DE, ES, IT, NL, PT).
_OTHER_MONTHS = (
    r"(?i:janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|novembre"
    r"|décembre|januar|februar|märz|juni|juli|oktober|dezember|enero|febrero|marzo|abril|mayo"
    r"|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre|gennaio|febbraio"
    r"|aprile|maggio|giugno|luglio|settembre|ottobre|dicembre|januari|februari|maart|mei"
    r"|augustus|janeiro|fevereiro|março|maio|junho|julho|setembro|outubro|dezembro)")
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th|er|\.|º)?"
_DATE = re.compile(
    rf"\b{_DAY}(?:\s+of)?\s+{_MONTHS}(?:,?\s+\d{{4}})?\b"
    rf"|\b{_MONTHS}\s+(?:the\s+)?{_DAY}(?:,?\s+\d{{4}})?\b"
    rf"|\b{_DAY}\s+(?:de\s+)?{_OTHER_MONTHS}(?:\s+(?:de\s+)?\d{{4}})?\b"
    r"|\b\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})\b"
    r"|\b\d{4}-\d{2}-\d{2}\b")
# Words about being born, and the phrasings that say it without "born" ("came into the
# world on", "arrived on this earth", "entered the world", "saw the light of day"), in the
# languages above.
_BIRTH_WORDS = re.compile(
    r"(?<!\w)b\.(?=\s)|\b(?:born|birth\w*|d\.?o\.?b|née|né|naissance|naquit|geboren|geburt\w*"
    r"|nacid[oa]|nac[ií][óo]?|nacimiento|nat[oa]|nacque|nascita|geboorte\w*|nasc(?:i|eu|ido|ida))\b"
    r"|\b(?:came|come|comes|coming|arrived|arrive|entered|enter)\s+(?:into|in|on)?\s*"
    r"(?:this|the)\s+(?:world|earth)\b"
    r"|\b(?:saw|see|first\s+saw)\s+the\s+light\s+of\s+day\b|\bmis\s+au\s+monde\b"
    r"|\bvenu[e]?\s+au\s+monde\b|\bven\w*\s+al\s+mondo\b|\bvine\s+al\s+mundo\b"
    r"|\bzur\s+welt\b|\bter\s+wereld\b|\bvim\s+ao\s+mundo\b",
    re.IGNORECASE)
# A full stop after a lone letter is an abbreviation ("d.o.b. 11/06/1980"), not an end.
_SENTENCE_END = re.compile(r"(?<!\b\w)[.!?;]\s|\n")


def addresses(text: str) -> Spans:
    """Street addresses, flats and boxes, and postcodes (see the patterns above)."""
    for pattern in _ADDRESSES:
        for m in pattern.finditer(text):
            yield m.span()


def dates_of_birth(text: str) -> Spans:
    """Dates with a day in them ("12 May 1948", "05/12/1948", "May 12th") within a clause of
    a word about birth: 'born', 'birthday', 'DOB', 'date of birth'. A year alone ("born in
    1948") is kept: it is the story's frame, and the system prompt already says it."""
    for m in _DATE.finditer(text):
        before = text[max(0, m.start() - 60):m.start()]
        before = _SENTENCE_END.split(before)[-1]
        after = _SENTENCE_END.split(text[m.end():m.end() + 40])[0]
        if _BIRTH_WORDS.search(before) or _BIRTH_WORDS.search(after):
            yield m.span()
