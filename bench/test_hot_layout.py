"""bench/hot_layout.py on made-up profiles and link map, and the script it wrote.

    /usr/bin/python3 -m pytest -q bench/test_hot_layout.py   (ctest: bench.test_hot_layout)
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import hot_layout  # noqa: E402

# callgrind --dump-instr=yes --dump-line=no --compress-pos=no: addresses in
# their objects, libc's and corrald.real's.
CALLGRIND = """\
version: 1
creator: callgrind-3.19.0
positions: instr
events: Ir
ob=(1) /lib/x86_64-linux-gnu/libc.so.6
fn=(1) memcpy
0x4a000 500
ob=(2) /tmp/x/bin/corrald.real
fn=(2) _ZN6corral6daemon10Supervisor4tickEv
0x2000 40
cob=(1)
cfn=(1)
calls=1 0x4a000
0x2004 9000
0x2008 2
fn=(3) _ZN6corral6config7JobSpecD1Ev
0x2100 10
fn=(4) _ZN4YAML7Scanner4scanEv'2
0x3120 70
fn=(5) _ZL12scan_commandv.isra.0
0x2180 5
fn=(6) 0x0000000000001040
0x1020 3
ob=(1)
fn=(1)
0x4a010 7
ob=(2)
fn=(7) _ZN6corral7unknownEv
0x9000 1
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
 .text_hot      0x0000000000004000       0x10 other.o

.rodata         0x0000000000008000     0x2000
 *(.rodata .rodata.* .gnu.linkonce.r.*)
 .rodata.str1.1
                0x0000000000008000      0x204 libcorral_daemon.a(unity_0_cxx.cxx.o)
 .rodata        0x0000000000008220      0x100 /usr/lib/x86_64-linux-gnu/libyaml-cpp.a(stream.cpp.o)
 .rodata._ZN8nlohmann6detail5lexerE
                0x0000000000008400      0x440 libcorral_protocol.a(unity_0_cxx.cxx.o)
 .rodata.cst16  0x0000000000008840       0x20 /usr/lib/gcc/x86_64-linux-gnu/12/libstdc++.a(ryu.o)

.rodata1
 *(.rodata1)
 .rodata1       0x0000000000009000        0x8 other.o
"""

def test_each_instruction_of_the_program_by_its_link_address_and_its_self_cost():
    costs = hot_layout.executed_instructions(CALLGRIND, "corrald.real")
    # memcpy is libc's, before and after; the call's 9000 are the callee's.
    assert costs == {0x2000: 40, 0x2008: 2, 0x2100: 10, 0x3120: 70, 0x2180: 5,
                     0x1020: 3, 0x9000: 1}


def test_the_maps_placed_code_sections_with_long_names_on_two_lines():
    sections = hot_layout.input_sections(MAP, hot_layout.TEXT)
    assert [(hex(a), s) for a, _, s, _ in sections] == [
        ("0x1000", ".text"),
        ("0x2000", ".text._ZN6corral6daemon10Supervisor4tickEv"),
        ("0x2100", ".text._ZN6corral6config7JobSpecD2Ev"),
        ("0x2180", ".text._ZL12scan_commandv.isra.0"),
        ("0x3000", ".text"),
    ]  # the discarded section (address 0) is not among them
    assert sections[4][3] == "/usr/lib/x86_64-linux-gnu/libyaml-cpp.a(scanner.cpp.o)"


def test_the_maps_read_only_data_sections_and_not_another_kinds():
    sections = hot_layout.input_sections(MAP, hot_layout.RODATA)
    assert [(hex(a), hex(n), s) for a, n, s, _ in sections] == [
        ("0x8000", "0x204", ".rodata.str1.1"),
        ("0x8220", "0x100", ".rodata"),
        ("0x8400", "0x440", ".rodata._ZN8nlohmann6detail5lexerE"),
        ("0x8840", "0x20", ".rodata.cst16"),
    ]  # not .rodata1, nor the output section's own line


def test_the_distinct_addresses_a_trace_read_at_their_link_addresses():
    trace = ["I  04011a2c,3", " L 04108010,8", " S 04108020,8", " M 04108400,4",
             " L 04108010,8", " L 00ffff00,8", "==123== a message"]
    assert hot_layout.data_reads(trace, 0x4100000) == {0x8010: 1, 0x8400: 1}


def test_the_load_base_is_the_programs_mapping_at_offset_zero():
    maps = ("00100000-00108000 r-xp 00000000 fe:00 1 /usr/libexec/valgrind/lackey-amd64-linux\n"
            "04108000-0410e000 r--p 00006000 fe:00 2 /tmp/w/lackey/corrald.real\n"
            "04100000-04106000 r--p 00000000 fe:00 2 /tmp/w/lackey/corrald.real\n")
    assert hot_layout.load_base(maps, "corrald.real") == 0x4100000


def test_a_functions_section_by_name_an_objects_by_its_file_hottest_first():
    costs = hot_layout.executed_instructions(CALLGRIND, "corrald.real")
    patterns = hot_layout.hot_patterns([costs], hot_layout.input_sections(MAP))
    assert patterns == [[
        "*libyaml-cpp.a:scanner.cpp.o(.text)",  # 70: inside the object's one section
        "*(.text._ZN6corral6daemon10Supervisor4tickEv)",  # 42
        "*(.text._ZN6corral6config7JobSpecD2Ev)",  # 10
        "*(.text._ZL12scan_commandv.isra.0)",  # 5
        "*Scrt1.o(.text)",  # 3, code callgrind has no name for
    ]]  # the address in no section is skipped


def test_what_a_later_profile_adds_comes_after_all_of_the_first():
    first = {0x2100: 1}
    later = {0x2000: 900, 0x2110: 900}
    patterns = hot_layout.hot_patterns([first, later], hot_layout.input_sections(MAP))
    assert patterns == [["*(.text._ZN6corral6config7JobSpecD2Ev)"],  # once, where first seen
                        ["*(.text._ZN6corral6daemon10Supervisor4tickEv)"]]


def test_a_function_that_ran_brings_the_data_named_after_it():
    sections = hot_layout.input_sections(MAP, hot_layout.RODATA) + [
        (0x8900, 0x10, ".rodata._ZN6corral6daemon10Supervisor4tickEv.str1.1", "d.a(u.o)"),
        (0x8910, 0x10, ".rodata._ZN6corral6daemon10Supervisor4tickEv", "d.a(u.o)"),
        (0x8920, 0x10, ".rodata._ZN6corral6daemon10Supervisor4tickEvX", "d.a(u.o)")]
    code = [["*libyaml-cpp.a:scanner.cpp.o(.text)",
             "*(.text._ZN6corral6daemon10Supervisor4tickEv)"],
            ["*(.text._ZN8nlohmann6detail5lexerE)"]]
    assert hot_layout.own_data(code, sections) == [
        ["*(.rodata._ZN6corral6daemon10Supervisor4tickEv.str1.1)",
         "*(.rodata._ZN6corral6daemon10Supervisor4tickEv)"],  # not another name's
        ["*(.rodata._ZN8nlohmann6detail5lexerE)"]]


def test_groups_merged_keep_each_pattern_where_it_first_comes():
    assert hot_layout.merged([["a", "b"], ["c"], []], [["b", "d"], ["a", "e", "c"], ["f"]]) == [
        ["a", "b", "d"], ["c", "e"], ["f"]]


def test_data_a_section_by_name_an_objects_by_its_file_most_read_first():
    reads = {0x8000: 1, 0x8010: 1, 0x8400: 1, 0x8410: 1, 0x8420: 1, 0x8841: 1,
             0x8330: 1}  # in no section: the gap after the object's .rodata
    patterns = hot_layout.hot_patterns([reads], hot_layout.input_sections(MAP, hot_layout.RODATA))
    assert patterns == [[
        "*(.rodata._ZN8nlohmann6detail5lexerE)",  # three addresses
        "*libcorral_daemon.a:unity_0_cxx.cxx.o(.rodata.str1.1)",  # two
        "*libstdc++.a:ryu.o(.rodata.cst16)",
    ]]


def test_the_script_titles_each_group_and_inserts_each_kinds_section_where_it_goes():
    script = hot_layout.linker_script(
        [(hot_layout.TEXT, [["*(.text.a)"], ["*(.text.b)", "*x.a:y.o(.text)"]],
          ["first: 1 sections", "then: 2 sections"]),
         (hot_layout.RODATA, [["*x.a:y.o(.rodata.str1.1)"], []],
          ["first: 1 sections", "then: 0 sections"])], "a test")
    body = script[script.index("SECTIONS"):].splitlines()
    assert body == ["SECTIONS", "{", "  .text.corrald_hot :", "  {",
                    "    /* first: 1 sections */", "    *(.text.a)",
                    "    /* then: 2 sections */", "    *(.text.b)", "    *x.a:y.o(.text)",
                    "  }", "}", "INSERT BEFORE .text;",
                    "SECTIONS", "{", "  .rodata.corrald_hot :", "  {",
                    "    /* first: 1 sections */", "    *x.a:y.o(.rodata.str1.1)",
                    "    /* then: 0 sections */",
                    "  }", "}", "INSERT AFTER .rodata;"]


def test_a_plain_objects_whole_section_is_named_by_its_file():
    assert hot_layout.section_pattern(".text", "/usr/lib/x/Scrt1.o") == "*Scrt1.o(.text)"
    assert (hot_layout.section_pattern(".text.startup", "/a/libstdc++.a(ios_init.o)")
            == "*libstdc++.a:ios_init.o(.text.startup)")
    assert (hot_layout.section_pattern(".rodata.str1.8", "/a/libsqlite3.a(main.o)")
            == "*libsqlite3.a:main.o(.rodata.str1.8)")
    assert hot_layout.section_pattern(".rodata.cst4", "x.o") == "*x.o(.rodata.cst4)"
    assert (hot_layout.section_pattern(".rodata._ZN1f1gEv.str1.1", "x.o")
            == "*(.rodata._ZN1f1gEv.str1.1)")


def test_the_committed_script_places_named_sections_of_both_kinds():
    with open(os.path.join(os.path.dirname(HERE), "cmake", "corrald-hot.ld")) as f:
        text = f.read()
    code = text[text.index("SECTIONS"):text.index(hot_layout.INSERT[hot_layout.TEXT])]
    data = text[text.index(hot_layout.INSERT[hot_layout.TEXT]):]
    assert f"{hot_layout.OUTPUT_SECTION[hot_layout.TEXT]} :" in code
    assert f"{hot_layout.OUTPUT_SECTION[hot_layout.RODATA]} :" in data
    assert data.rstrip().endswith(hot_layout.INSERT[hot_layout.RODATA])
    pattern = re.compile(r"\*(\([.\w$]+\)|[\w.+-]+(:[\w.+-]+)?\([.\w$]+\))")
    for body, at_least in ((code, 300), (data, 50)):
        patterns = re.findall(r"^    ([^/\s].*)$", body, re.M)
        assert len(patterns) > at_least
        for p in patterns:
            assert pattern.fullmatch(p), p
    code_patterns = re.findall(r"^    ([^/\s].*)$", code, re.M)
    # The functions of a daemon's every day are there, and its strings.
    assert "*(.text.main)" in code_patterns or "*(.text.startup.main)" in code_patterns
    assert any("Supervisor" in p for p in code_patterns)
    assert "*libcorral_daemon.a:unity_0_cxx.cxx.o(.rodata.str1.1)" in data
