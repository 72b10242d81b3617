"""The CPU's instruction set as far as INT8 inference cares: what it is, and what it means.

ONNX Runtime's CPU kernels for a QDQ graph with uint8 activations and int8 weights (U8S8)
take one of these paths (MLAS, chosen at run time from CPUID):

``amx``, ``avx512-vnni``, ``avx-vnni``
    ``VPDPBUSD`` (or AMX tiles): u8 x s8 products summed straight into int32. Exact.
``avx512``, ``avx2``, ``sse``
    ``VPMADDUBSW``: two u8 x s8 products summed into a **signed 16-bit** lane first. With full
    8-bit weights that sum reaches 2 x 255 x 127 = 64770 > 32767 and is clamped (saturated);
    ONNX Runtime's quantization docs ("When and why do I need to try U8U8?") name this and
    the cure: ``reduce_range`` (7-bit weights, 2 x 255 x 64 = 32640 fits) or U8U8.
``arm64``
    No such issue (the same docs).

So a graph quantized with full-range weights computes other numbers on an AVX2 CPU than on
the VNNI CPU that measured it (the issue's AMD EPYC: CAM Pearson mean 0.968 where the Xeon
said 0.999), while a reduce-range graph computes the same integers everywhere. The INT8
record stores :func:`cpu_info` of the CPU that measured it; ``precision="auto"`` trusts the
record only on a CPU of the same :func:`int8_kernel` class (speed differs across classes too).

Linux reads ``/proc/cpuinfo``; elsewhere the flags are unknown and the class is ``unknown``,
which never matches a record (``auto`` keeps float32; ``--precision int8`` still works).
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: the flags that decide which INT8 kernels ONNX Runtime runs (recorded; others are noise)
FLAGS = ("sse4_1", "avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8")
#: kernel classes whose U8S8 path sums pairs into int16 (saturates with full-range weights)
SATURATING = ("avx512", "avx2", "sse")
#: what ``--isa`` accepts: the instruction set a graph is quantized for
ISAS = ("auto", "vnni", "avx2")


def int8_kernel(flags: Iterable[str], arch: str = "x86_64") -> str:
    """The class of ONNX Runtime's U8S8 kernel on a CPU with ``flags`` (see the module doc)."""
    f = set(flags)
    if arch.lower() in ("aarch64", "arm64"):
        return "arm64"
    if arch.lower() not in ("x86_64", "amd64", "x64", "i686", "x86"):
        return "unknown"
    if "amx_int8" in f and "amx_tile" in f:
        return "amx"
    if "avx512_vnni" in f:
        return "avx512-vnni"
    if "avx_vnni" in f:
        return "avx-vnni"
    if "avx512bw" in f or "avx512f" in f:
        return "avx512"
    if "avx2" in f:
        return "avx2"
    if "sse4_1" in f:
        return "sse"
    return "unknown"


def saturates(kernel: str) -> bool:
    """Whether full-range int8 weights can saturate this kernel class's U8S8 sums."""
    return kernel in SATURATING


def parse_cpuinfo(text: str, arch: str = "x86_64") -> dict[str, Any]:
    """``{vendor, model, arch, flags, int8_kernel}`` from the text of ``/proc/cpuinfo``."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor is enough: all cores of a machine share the ISA
            continue
        k, _, v = line.partition(":")
        fields.setdefault(k.strip().lower(), v.strip())
    have = set((fields.get("flags") or fields.get("features") or "").split())
    flags = [f for f in FLAGS if f in have]
    return {
        "vendor": fields.get("vendor_id", fields.get("cpu implementer", "")),
        "model": fields.get("model name", fields.get("processor", "")),
        "arch": arch,
        "flags": flags,
        "int8_kernel": int8_kernel(flags, arch),
    }


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    """This machine's :func:`parse_cpuinfo` (``int8_kernel`` ``unknown`` where not Linux)."""
    arch = platform.machine() or "unknown"
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {"vendor": "", "model": platform.processor(), "arch": arch, "flags": [],
                "int8_kernel": "arm64" if int8_kernel([], arch) == "arm64" else "unknown"}
    return parse_cpuinfo(text, arch)


def kernel_of(isa: Mapping[str, Any] | None) -> str:
    """The kernel class a recorded ``isa`` entry stands for (recomputed from its flags, so an
    edited flag list counts; ``unknown`` for a record without one)."""
    if not isinstance(isa, Mapping):
        return "unknown"
    flags = isa.get("flags")
    if isinstance(flags, list):
        return int8_kernel(map(str, flags), str(isa.get("arch", "x86_64")))
    return str(isa.get("int8_kernel", "unknown"))


def describe(isa: Mapping[str, Any] | None = None) -> str:
    """``"GenuineIntel Intel(R) Xeon(R) Processor (avx512-vnni: avx2 avx512f …)"``, for logs and benches."""
    isa = cpu_info() if isa is None else isa
    name = " ".join(str(x) for x in (isa.get("vendor"), isa.get("model")) if x) or "unknown CPU"
    return f"{name} ({kernel_of(isa)}: {' '.join(isa.get('flags') or []) or 'no flags known'})"


def recipe_isa(requested: str = "auto", isa: Mapping[str, Any] | None = None) -> str:
    """The ISA a graph is quantized for: ``"avx2"`` (reduce-range weights, no saturation
    anywhere) or ``"vnni"`` (full-range weights, exact only where the kernel does not saturate).
    ``"auto"`` picks by the CPU: reduce-range where its kernel saturates or is unknown."""
    if requested not in ISAS:
        raise ValueError(f"isa must be one of {ISAS}, not {requested!r}")
    if requested != "auto":
        return requested
    k = kernel_of(cpu_info() if isa is None else isa)
    return "vnni" if k in ("amx", "avx512-vnni", "avx-vnni", "arm64") else "avx2"


__all__ = ["FLAGS", "ISAS", "SATURATING", "cpu_info", "describe", "int8_kernel", "kernel_of",
           "parse_cpuinfo", "recipe_isa", "saturates"]
