"""bash completion of certreg-admin (deploy/bash-completion/certreg-admin).

The script is sourced into a real bash, given partial command lines as
COMP_WORDS/COMP_CWORD the way readline hands them over, and its COMPREPLY
read back. Every command and option the program itself lists in --help
must be offered, so a command added to the program without its completion
fails here.
"""
import re
import shlex
import subprocess

import pytest

from fixtures.cli import REPO
from test_admin import ok

SCRIPT = REPO / "deploy/bash-completion/certreg-admin"


def complete(line, cwd=None):
    """The completions bash offers at the end of line ("... " for a new word)."""
    words = shlex.split(line)
    if line.endswith(" ") or not words:
        words.append("")
    program = f"""
source {shlex.quote(str(SCRIPT))}
COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})
COMP_CWORD={len(words) - 1}
COMP_LINE={shlex.quote(line)}
COMP_POINT=${{#COMP_LINE}}
_certreg_admin
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True,
                       text=True, timeout=30, cwd=cwd)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    return sorted(w for w in p.stdout.split("\n") if w)


def help_commands():
    """The commands `certreg-admin --help` lists, as ("group", "name") or ("check",)."""
    out = ok(None, "--help").stdout
    cmds = re.findall(r"^  ([a-z]+(?: [a-z][a-z-]*)?)(?: |$)", out, re.M)
    assert len(cmds) > 20, out
    return [tuple(c.split()) for c in cmds]


def help_options(cmd):
    """The long options the command's --help lists (one a line, indented)."""
    out = ok(None, *cmd, "--help").stdout
    return set(re.findall(r"^ +(?:-[a-zA-Z], )?(--[a-z][a-z-]*)", out, re.M))


def test_the_first_word_is_a_command_group_or_a_global_option():
    groups = sorted({c[0] for c in help_commands()})
    assert complete("certreg-admin ") == groups
    assert complete("certreg-admin o") == ["office", "operator"]
    assert complete("certreg-admin --") == ["--db", "--help", "--json", "--version"]
    # Global options before the command are skipped over, --db with its value.
    assert complete("certreg-admin --db 'host=/tmp dbname=x' --json ke") == ["key"]


def test_every_command_of_help_is_offered():
    for cmd in help_commands():
        if len(cmd) == 1:
            assert cmd[0] in complete("certreg-admin "), cmd
        else:
            assert cmd[1] in complete(f"certreg-admin {cmd[0]} "), cmd
            assert cmd[1] in complete(f"certreg-admin {cmd[0]} {cmd[1][:-1]}"), cmd


@pytest.mark.parametrize("cmd", help_commands(), ids=" ".join)
def test_every_option_of_a_commands_help_is_offered(cmd):
    offered = set(complete("certreg-admin " + " ".join(cmd) + " --"))
    documented = help_options(cmd)
    assert documented, cmd
    assert documented <= offered, f"{cmd}: not offered: {sorted(documented - offered)}"
    # And nothing the command would reject.
    assert offered <= documented | {"--db", "--json", "--help"}, sorted(offered - documented)


def test_partial_command_lines():
    assert complete("certreg-admin key s") == ["show", "suspend"]
    assert complete("certreg-admin key bind abcdef12 --t") == ["--ticket"]
    assert complete("certreg-admin unit set-status 110101000001 ") == ["active", "closed"]
    assert complete("certreg-admin unit set-status 110101000001 c") == ["closed"]
    assert complete("certreg-admin operator add alice --office DC01 --role s") == ["supervisor"]
    assert complete("certreg-admin cert check --purpose ") == ["any", "client"]
    assert complete("certreg-admin audit log --since y") == ["yesterday"]
    # A value the clerk types: nothing offered (no file names for --reason).
    assert complete("certreg-admin key suspend abcdef12 --reason ") == []
    # The global options are accepted after the command too.
    assert complete("certreg-admin --json pending list --li") == ["--limit"]
    assert complete("certreg-admin pending list --j") == ["--json"]


def test_file_options_complete_file_names(tmp_path):
    (tmp_path / "leaf.pem").write_text("x")
    (tmp_path / "leaf.der").write_text("x")
    (tmp_path / "sqldir").mkdir()
    assert complete("certreg-admin key bind --cert le", cwd=tmp_path) == ["leaf.der", "leaf.pem"]
    assert complete("certreg-admin cert check --cert x --ca leaf.p", cwd=tmp_path) == ["leaf.pem"]
    assert complete("certreg-admin db migrate --sql-dir s", cwd=tmp_path) == ["sqldir"]
