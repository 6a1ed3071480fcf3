"""The `auto` precision: bfloat16 only where the CPU computes it in hardware (fmnist_core/cpu.py)."""

from pathlib import Path

import pytest

from fmnist_core.cpu import computes_bfloat16_natively, cpu_flags, precision_for_this_cpu
from fmnist_core.hyperparameters import PRESETS, HyperParameters
from fmnist_core.reporting import summarize

# The first lines of /proc/cpuinfo on the two kinds of machine this project trains on (flags shortened).
AMD_EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni
bugs\t\t: sysret_ss_attrs
"""
XEON_AMX = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C
flags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8
"""
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 bf16\n"


@pytest.mark.parametrize(("cpuinfo", "native"), [(AMD_EPYC, False), (XEON_AMX, True), (ARM, False)])
def test_the_cpus_own_flags_say_whether_it_has_bfloat16(tmp_path: Path, cpuinfo: str, native: bool):
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    flags = cpu_flags(tmp_path / "cpuinfo")
    assert ("avx2" in flags or "asimd" in flags) and computes_bfloat16_natively(flags) is native
    assert precision_for_this_cpu("auto", flags) == ("mixed_bfloat16" if native else "float32")


def test_only_auto_is_resolved():
    for flags in (frozenset(), frozenset({"amx_bf16"})):
        assert precision_for_this_cpu("float32", flags) == "float32"
        assert precision_for_this_cpu("mixed_bfloat16", flags) == "mixed_bfloat16"


def test_a_machine_without_cpuinfo_has_no_flags(tmp_path: Path):
    assert cpu_flags(tmp_path / "missing") == frozenset()
    assert precision_for_this_cpu("auto", frozenset()) == "float32"


def test_the_shipped_fast_presets_ask_for_auto_and_resolve_to_this_machines_precision():
    expected = "mixed_bfloat16" if computes_bfloat16_natively() else "float32"
    for name in ("quick", "best"):
        assert PRESETS[name].precision == "auto"
        assert PRESETS[name].for_this_cpu().precision == expected
        assert PRESETS[name].for_this_cpu().with_changes(precision="auto") == PRESETS[name]
    assert "bfloat16 if the CPU has it" in summarize(PRESETS["quick"])
    assert HyperParameters().for_this_cpu() == HyperParameters()  # float32 stays float32


def test_a_model_built_with_auto_computes_in_this_machines_precision():
    from fmnist_core.model import build_model

    model = build_model(PRESETS["quick"].with_changes(filters=(8, 8), dense_units=16))
    expected = "bfloat16" if computes_bfloat16_natively() else "float32"
    assert model.get_layer("block1_conv1").compute_dtype == expected
