"""What the machine can do: GPUs through NVML, and the training profile that suits them.

Every figure is read, never estimated: where NVML or a GPU is missing the GPU fields are None
("unavailable"), not zero and not a guess.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

PROFILES = ("auto", "cpu", "rtx5090", "a100", "h100")


@dataclass(frozen=True)
class GpuStatus:
    index: int
    name: str
    memory_total_mb: float
    memory_used_mb: float
    utilization_pct: float | None
    temperature_c: float | None
    power_w: float | None


@dataclass(frozen=True)
class Profile:
    """Training settings for one kind of hardware."""

    name: str
    device: str  # "cpu" or "cuda"
    precision: str  # "fp32", "bf16" or "fp16"
    gradient_checkpointing: bool
    memory_budget_mb: float  # what the micro-batch estimate may use
    attention: str = "sdpa"  # "flash_attention_2" when installed and supported


@dataclass
class HardwareReport:
    profile: Profile
    gpus: list[GpuStatus] = field(default_factory=list)
    nvml: str = "unavailable"  # NVML's state: "ok" or why it could not be read

    def as_dict(self) -> dict:
        return asdict(self)


def gpu_status() -> tuple[list[GpuStatus], str]:
    """Every NVIDIA GPU's live figures, and NVML's state ("ok" or the reason it is not)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - NVML missing or no driver: report, do not fail
        return [], f"unavailable ({type(exc).__name__})"
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(GpuStatus(
                index=i, name=name.decode() if isinstance(name, bytes) else name,
                memory_total_mb=memory.total / 2**20, memory_used_mb=memory.used / 2**20,
                utilization_pct=_read(lambda h=handle: pynvml.nvmlDeviceGetUtilizationRates(
                    h).gpu),
                temperature_c=_read(lambda h=handle: pynvml.nvmlDeviceGetTemperature(
                    h, pynvml.NVML_TEMPERATURE_GPU)),
                power_w=_read(lambda h=handle: pynvml.nvmlDeviceGetPowerUsage(h) / 1000)))
        return gpus, "ok"
    finally:
        pynvml.nvmlShutdown()


def _read(getter) -> float | None:
    try:
        return float(getter())
    except Exception:  # noqa: BLE001 - a sensor this GPU lacks is "unavailable"
        return None


def _flash_attention_available() -> bool:
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return False
    return True


def select_profile(requested: str = "auto") -> HardwareReport:
    """The profile for *requested* on this machine; a GPU profile without a GPU is an error."""
    if requested not in PROFILES:
        raise ValueError(f"hardware profile {requested!r} is not one of {', '.join(PROFILES)}")
    import torch

    gpus, nvml = gpu_status()
    has_cuda = torch.cuda.is_available()
    if requested == "cpu" or (requested == "auto" and not has_cuda):
        import psutil

        budget = psutil.virtual_memory().available / 2**20 * 0.5
        precision = "bf16" if cpu_has_native_bf16() else "fp32"
        return HardwareReport(Profile("cpu", "cpu", precision, False, budget), gpus, nvml)
    if not has_cuda:
        raise RuntimeError(f"hardware profile {requested!r} needs a CUDA GPU and this machine "
                           f"has none; use 'cpu' or 'auto'")
    props = torch.cuda.get_device_properties(0)
    name = requested if requested != "auto" else _profile_for(props.name)
    precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    # Flash-attention 2 needs Ampere (sm80) or newer.
    attention = ("flash_attention_2" if _flash_attention_available() and props.major >= 8
                 else "sdpa")
    return HardwareReport(
        Profile(name, "cuda", precision, gradient_checkpointing=True,
                memory_budget_mb=props.total_memory / 2**20 * 0.85, attention=attention),
        gpus, nvml)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX): there, bf16 autocast
    trains SmolLM2 1.6x faster than fp32 with the same held-out perplexity (README,
    Training); elsewhere bf16 is emulated and slower, so the CPU profile keeps fp32."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def free_memory_mb(report: HardwareReport) -> tuple[float | None, str]:
    """Memory free now where the profile trains, in MiB, and what was read: available RAM
    (psutil) on CPU, free memory of GPU 0 (NVML) on CUDA; None where NVML cannot read it."""
    if report.profile.device == "cpu":
        import psutil

        return psutil.virtual_memory().available / 2**20, "available RAM"
    if not report.gpus:
        return None, f"free GPU memory (NVML {report.nvml})"
    gpu = report.gpus[0]
    return (gpu.memory_total_mb - gpu.memory_used_mb,
            f"free memory of GPU {gpu.index} ({gpu.name})")


def hardware_class() -> str:
    """The profile name this machine's first GPU maps to, or "cpu" (NVML only, no torch):
    what duration history is grouped by."""
    gpus, _ = gpu_status()
    return _profile_for(gpus[0].name) if gpus else "cpu"


def _profile_for(gpu_name: str) -> str:
    lowered = gpu_name.lower()
    for key, profile in (("5090", "rtx5090"), ("a100", "a100"), ("h100", "h100"),
                         ("h200", "h100")):
        if key in lowered:
            return profile
    return "rtx5090"  # a consumer-class default for other CUDA GPUs
