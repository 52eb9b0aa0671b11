"""eSpeak NG through the library in the `espeakng-loader` wheel: no system package needed.

Two uses: rendering text (with the sample offset of every word, which the alignment
cross-check and the tests rely on) and phonemising words the aligner's dictionary lacks.
The library keeps global state, so every call goes through one lock.
"""

from __future__ import annotations

import ctypes
import re
import threading
from dataclasses import dataclass

import numpy as np

from clone_pipeline.voice.lazy import process_singleton

_EVENT_WORD = 1
_EVENT_LIST_TERMINATED = 0
_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_SSML = 0x10
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "wordgap": 7}


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p),
                ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


class EspeakError(RuntimeError):
    """eSpeak NG could not be loaded or refused the request."""


@dataclass(frozen=True)
class Rendering:
    audio: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    # (character offset in the text, character length, start sample) for every word spoken
    words: list[tuple[int, int, int]]

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate


class _Engine:
    def __init__(self) -> None:
        import espeakng_loader

        try:
            self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as exc:
            raise EspeakError(f"cannot load the eSpeak NG library: {exc}") from exc
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint,
                                     ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                     ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
                                              ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        data = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate <= 0:
            raise EspeakError("eSpeak NG failed to initialise (data files missing?)")
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int]] = []
        self._callback = _CALLBACK(self._on_audio)  # kept alive: the library holds a pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()
        self._voice: str | None = None

    def _on_audio(self, wav, n: int, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_WORD:
                self._events.append((ev.text_position - 1, ev.length, ev.sample))
            i += 1
        return 0

    def set_voice(self, voice: str) -> None:
        if voice != self._voice:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EspeakError(f"eSpeak NG has no voice {voice!r}")
            self._voice = voice

    def synth(self, text: str, voice: str, params: dict[str, int], ssml: bool) -> Rendering:
        with self.lock:
            self.set_voice(voice)
            for name, value in params.items():
                self.lib.espeak_SetParameter(_PARAM[name], int(value), 0)
            self._chunks, self._events = [], []
            raw = text.encode("utf-8") + b"\0"
            flags = _CHARS_UTF8 | (_SSML if ssml else 0)
            err = self.lib.espeak_Synth(raw, len(raw), 0, _POS_CHARACTER, 0, flags, None, None)
            if err != 0:
                raise EspeakError(f"eSpeak NG synthesis failed (error {err})")
            self.lib.espeak_Synchronize()
            pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            words = list(self._events)
        return Rendering(pcm.astype(np.float32) / 32768.0, self.sample_rate, words)

    def phonemes(self, word: str, voice: str) -> str:
        with self.lock:
            self.set_voice(voice)
            ptr = ctypes.c_char_p(word.encode("utf-8"))
            # phonememode: ASCII mnemonics, '_' between phonemes (bits 8-15 hold the separator)
            out = self.lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, ord("_") << 8)
        return (out or b"").decode("utf-8", "replace")


engine = process_singleton(_Engine)


def render(text: str, *, voice: str = "en-us", rate: int = 175, pitch: int = 50,
           pitch_range: int = 50, ssml: bool = False) -> Rendering:
    """Speak *text*; rate is eSpeak's words per minute (80-450), pitch and range 0-99."""
    params = {"rate": rate, "pitch": pitch, "range": pitch_range, "volume": 100, "wordgap": 0}
    return engine().synth(text, voice, params, ssml)


# eSpeak's ASCII phoneme mnemonics (en-us) -> the ARPAbet of pocketsphinx's cmudict.
_TO_ARPABET = {
    "a": "AE", "aa": "AE", "a#": "AE", "A:": "AA", "A@": "AA R", "A": "AA", "0": "AA",
    "aI": "AY", "aI@": "AY ER", "aI3": "AY ER", "aU": "AW", "aU@": "AW ER",
    "@": "AH", "@2": "AH", "@5": "AH", "@L": "AH L", "@-": "AH", "3:": "ER", "3": "ER",
    "V": "AH", "VR": "ER", "E": "EH", "e": "EY", "e@": "EH R", "eI": "EY", "I": "IH",
    "I2": "IH", "I#": "IH", "i": "IY", "i:": "IY", "i@": "IY ER", "i@3": "IY R",
    "O": "AO", "O:": "AO", "O@": "AO R", "o@": "AO R", "OI": "OY", "oU": "OW", "o": "OW",
    "U": "UH", "U@": "UH R", "u": "UW", "u:": "UW", "IR": "IH R", "eIR": "EH R",
    "p": "P", "b": "B", "t": "T", "t#": "T", "d": "D", "k": "K", "g": "G", "f": "F",
    "v": "V", "T": "TH", "D": "DH", "s": "S", "z": "Z", "S": "SH", "Z": "ZH", "h": "HH",
    "m": "M", "n": "N", "N": "NG", "l": "L", "r": "R", "w": "W", "j": "Y", "tS": "CH",
    "dZ": "JH", "*": "D", "n-": "N", "l-": "L", "r-": "R", "m-": "M", "?": "T", "x": "K",
    "hw": "W", "W": "W", "R": "R",
}


def arpabet(word: str, voice: str = "en-us") -> str:
    """ARPAbet pronunciation of *word* from eSpeak's phonemes (for out-of-vocabulary words)."""
    raw = engine().phonemes(word, voice)
    phones: list[str] = []
    for token in re.split(r"[_\s]+", raw):
        token = re.sub(r"[',%=!|]", "", token)
        if not token:
            continue
        mapped = _TO_ARPABET.get(token) or _TO_ARPABET.get(token.rstrip(":#0123456789"))
        if mapped is None:  # unknown mnemonic: map its characters one by one where we can
            mapped = " ".join(m for m in (_TO_ARPABET.get(c) for c in token) if m)
        if mapped:
            phones.extend(mapped.split())
    return " ".join(phones)
