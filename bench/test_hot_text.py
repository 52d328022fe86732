"""bench/hot_text.py on a made-up profile and link map, and the script it wrote.

    /usr/bin/python3 -m pytest -q bench/test_hot_text.py   (ctest: bench.test_hot_text)
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import hot_text  # noqa: E402

CALLGRIND = """\
version: 1
creator: callgrind-3.19.0
events: Ir
ob=(1) /lib/x86_64-linux-gnu/libc.so.6
fn=(1) memcpy
0 500
ob=(2) /tmp/x/bin/corrald.real
fn=(2) _ZN6corral6daemon10Supervisor4tickEv
0 40
cfn=(3) _ZN6corral6config7JobSpecD1Ev
calls=1 0
0 9000
0 2
fn=(3)
0 10
fn=(4) _ZN4YAML7Scanner4scanEv'2
0 70
fn=(5) _ZL12scan_commandv.isra.0
+2 5
fn=(6) _ZN6corral7unknownEv
0 1
"""

MAP = """\
Archive member included to satisfy reference by file (symbol)

/usr/lib/x86_64-linux-gnu/libyaml-cpp.a(scanner.cpp.o)
                              x.o (YAML::Scanner::scan())

Linker script and memory map

 .text          0x0000000000001000       0x40 /usr/lib/gcc/x86_64-linux-gnu/12/../../../x86_64-linux-gnu/Scrt1.o
 .text._ZN6corral6daemon10Supervisor4tickEv
                0x0000000000002000      0x100 libcorral_daemon.a(unity_0_cxx.cxx.o)
                0x0000000000002000                _ZN6corral6daemon10Supervisor4tickEv
 .text._ZN6corral6config7JobSpecD2Ev
                0x0000000000002100       0x80 libcorral_config.a(unity_0_cxx.cxx.o)
 .text._ZL12scan_commandv.isra.0
                0x0000000000002180       0x20 libcorral_config.a(unity_0_cxx.cxx.o)
 .text          0x0000000000003000      0x900 /usr/lib/x86_64-linux-gnu/libyaml-cpp.a(scanner.cpp.o)
 .text._ZN6corral7discardEv
                0x0000000000000000       0x10 libcorral_daemon.a(unity_0_cxx.cxx.o)
"""

NM = """\
0000000000001000 T _start
0000000000002000 T _ZN6corral6daemon10Supervisor4tickEv
0000000000002100 W _ZN6corral6config7JobSpecD2Ev
0000000000002100 W _ZN6corral6config7JobSpecD1Ev
0000000000002180 t _ZL12scan_commandv.isra.0
0000000000003120 T _ZN4YAML7Scanner4scanEv
"""


def test_self_cost_of_the_programs_functions_alone():
    costs = hot_text.executed_functions(CALLGRIND, "corrald.real")
    # memcpy is libc's; the call's 9000 are the callee's, not tick's.
    assert costs == {"_ZN6corral6daemon10Supervisor4tickEv": 42,
                     "_ZN6corral6config7JobSpecD1Ev": 10,
                     "_ZN4YAML7Scanner4scanEv": 70,
                     "_ZL12scan_commandv.isra.0": 5,
                     "_ZN6corral7unknownEv": 1}


def test_the_maps_placed_code_sections_with_long_names_on_two_lines():
    sections = hot_text.input_sections(MAP)
    assert [(hex(a), s) for a, _, s, _ in sections] == [
        ("0x1000", ".text"),
        ("0x2000", ".text._ZN6corral6daemon10Supervisor4tickEv"),
        ("0x2100", ".text._ZN6corral6config7JobSpecD2Ev"),
        ("0x2180", ".text._ZL12scan_commandv.isra.0"),
        ("0x3000", ".text"),
    ]  # the discarded section (address 0) is not among them
    assert sections[4][3] == "/usr/lib/x86_64-linux-gnu/libyaml-cpp.a(scanner.cpp.o)"


def test_a_functions_section_by_name_an_objects_by_its_file_hottest_first():
    patterns = hot_text.hot_patterns([hot_text.executed_functions(CALLGRIND, "corrald.real")],
                                     hot_text.symbol_addresses(NM),
                                     hot_text.input_sections(MAP))
    assert patterns == [[
        "*libyaml-cpp.a:scanner.cpp.o(.text)",  # 70: inside the object's one section
        "*(.text._ZN6corral6daemon10Supervisor4tickEv)",  # 42
        "*(.text._ZN6corral6config7JobSpecD2Ev)",  # 10, D1 an alias in D2's section
        "*(.text._ZL12scan_commandv.isra.0)",  # 5; the unknown function is skipped
    ]]


def test_what_a_later_profile_adds_comes_after_all_of_the_first():
    first = {"_ZN6corral6config7JobSpecD1Ev": 1}
    later = {"_ZN6corral6daemon10Supervisor4tickEv": 900, "_ZN6corral6config7JobSpecD2Ev": 900}
    patterns = hot_text.hot_patterns([first, later], hot_text.symbol_addresses(NM),
                                     hot_text.input_sections(MAP))
    assert patterns == [["*(.text._ZN6corral6config7JobSpecD2Ev)"],  # once, where first seen
                        ["*(.text._ZN6corral6daemon10Supervisor4tickEv)"]]


def test_the_script_titles_each_group_and_inserts_its_section_before_the_text():
    script = hot_text.linker_script([["*(.text.a)"], ["*(.text.b)", "*x.a:y.o(.text)"]],
                                    ["first: 1 sections", "then: 2 sections"], "a test")
    body = script[script.index("SECTIONS"):].splitlines()
    assert body == ["SECTIONS", "{", "  .text.corrald_hot :", "  {",
                    "    /* first: 1 sections */", "    *(.text.a)",
                    "    /* then: 2 sections */", "    *(.text.b)", "    *x.a:y.o(.text)",
                    "  }", "}", "INSERT BEFORE .text;"]


def test_a_plain_objects_whole_section_is_named_by_its_file():
    assert hot_text.section_pattern(".text", "/usr/lib/x/Scrt1.o") == "*Scrt1.o(.text)"
    assert (hot_text.section_pattern(".text.startup", "/a/libstdc++.a(ios_init.o)")
            == "*libstdc++.a:ios_init.o(.text.startup)")


def test_the_committed_script_places_named_sections_before_the_text():
    with open(os.path.join(os.path.dirname(HERE), "cmake", "corrald-hot-text.ld")) as f:
        text = f.read()
    body = text[text.index("SECTIONS"):]
    assert f"{hot_text.OUTPUT_SECTION} :" in body
    assert body.rstrip().endswith("INSERT BEFORE .text;")
    patterns = re.findall(r"^    ([^/\s].*)$", body, re.M)
    assert len(patterns) > 300
    for p in patterns:
        assert re.fullmatch(r"\*(\([.\w$]+\)|[\w.+-]+(:[\w.+-]+)?\([.\w$]+\))", p), p
    # The functions of a daemon's every day are there.
    assert "*(.text.main)" in patterns or "*(.text.startup.main)" in patterns
    assert any("Supervisor" in p for p in patterns)
