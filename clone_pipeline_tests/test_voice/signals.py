"""Test signals with known truth: vowels with set f0, jitter, shimmer and noise."""

import numpy as np
from scipy.signal import lfilter

from clone_pipeline.voice.audio_io import resample

RATE = 16_000
_SYNTH_RATE = 96_000  # pulses placed at 96 kHz, so rounding adds no jitter of its own


def _resonator(signal: np.ndarray, freq: float, bandwidth: float) -> np.ndarray:
    r = np.exp(-np.pi * bandwidth / _SYNTH_RATE)
    a = [1, -2 * r * np.cos(2 * np.pi * freq / _SYNTH_RATE), r * r]
    return lfilter([1 - r], a, signal)


def vowel(f0: float, seconds: float = 2.0, jitter: float = 0.0, shimmer: float = 0.0,
          seed: int = 0) -> tuple[np.ndarray, dict[str, float]]:
    """An /a/-like vowel: glottal pulses through three formants.

    Each period is f0's period times (1 + jitter * e) and each pulse's amplitude
    (1 + shimmer * e), e uniform in [-1, 1]; returns the signal and the true local jitter and
    shimmer computed from the periods and amplitudes actually generated (Praat's definitions).
    """
    rng = np.random.default_rng(seed)
    periods, amps, t = [], [], 0.0
    while t < seconds:
        p = (1 / f0) * (1 + jitter * rng.uniform(-1, 1))
        periods.append(p)
        amps.append(1 + shimmer * rng.uniform(-1, 1))
        t += p
    source = np.zeros(int((seconds + 1) * _SYNTH_RATE))
    # Rosenberg-like glottal pulse per period, so the waveform's peaks scale with amps.
    pos = 0.0
    for p, a in zip(periods, amps, strict=True):
        n = int(round(p * _SYNTH_RATE))
        k = np.arange(n)
        open_n = int(0.6 * n)
        pulse = np.where(k < open_n, 0.5 * (1 - np.cos(np.pi * k / max(open_n, 1))),
                         np.cos(np.pi * (k - open_n) / (2 * max(n - open_n, 1))).clip(0))
        start = int(round(pos * _SYNTH_RATE))
        source[start:start + n] += a * np.diff(np.r_[0, pulse])
        pos += p
    out = source
    for freq, bw in ((700, 80), (1220, 90), (2600, 120)):
        out = _resonator(out, freq, bw)
    out = resample(out[: int(seconds * _SYNTH_RATE)], _SYNTH_RATE, RATE)
    out = 0.5 * out / np.max(np.abs(out))
    periods = np.array(periods[1:-1])
    amps = np.array(amps[1:-1])
    truth = {"jitter": float(np.mean(np.abs(np.diff(periods))) / np.mean(periods)),
             "shimmer": float(np.mean(np.abs(np.diff(amps))) / np.mean(amps))}
    return out.astype(np.float32), truth


def with_noise(signal: np.ndarray, hnr_db: float, seed: int = 0) -> np.ndarray:
    """Add white noise so that periodic power / noise power = hnr_db."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(signal))
    noise *= np.sqrt(np.mean(signal**2) / 10 ** (hnr_db / 10) / np.mean(noise**2))
    return (signal + noise).astype(np.float32)
