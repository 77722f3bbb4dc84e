"""certreg-admin in Chinese (contract section 6, Language; issue 31).

The same commands under an English and a zh_CN locale: messages, hints,
table headings and --help follow LC_ALL, LC_MESSAGES, LANG (the first one
set); exit codes and --json never change. A minimal Debian generates no
zh_CN locale, and the Chinese must show all the same: the program runs here
with LOCPATH naming an empty directory, so that glibc knows only its
built-in C and C.UTF-8 locales whatever this machine has generated.
The last tests keep the catalogue complete: a text marked for translation
without a Chinese translation fails here.
"""
import json
import re
import subprocess
import time

import pytest

from fixtures.cli import REPO
from test_admin import (ADMIN, OK, REFUSED, USAGE, cert_json, column, org, record_refusal,
                        run, width)

__all__ = ["org"]  # test_admin's fixture, used here as an argument

ZH = {"LANG": "zh_CN.UTF-8"}
EN = {"LANG": "C.UTF-8"}
# Every way of asking for each language; the locale variables first unset.
ZH_ENVS = [{"LANG": "zh_CN.UTF-8"}, {"LANG": "zh_CN"},
           {"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"},
           {"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "C"},
           {"LC_ALL": "", "LC_MESSAGES": "zh_CN.GB18030", "LANG": "en_US.UTF-8"}]
EN_ENVS = [{"LANG": "C"}, {"LANG": "en_US.UTF-8"}, {"LC_ALL": "C", "LANG": "zh_CN.UTF-8"},
           {"LC_MESSAGES": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"},
           {"LANG": "zh_TW.UTF-8"}, {"LANGUAGE": "zh_CN", "LANG": "C"}]


NO_LOCALES = "/nonexistent/locales"   # glibc then knows only C, C.UTF-8, POSIX


def lrun(conninfo, *args, env):
    """run() with only these locale variables set, and no generated locale."""
    clean = {v: "" for v in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE", "LC_CTYPE")}
    return run(conninfo, *args, env={**clean, "LOCPATH": NO_LOCALES, **env})


def test_the_program_runs_where_no_zh_cn_locale_exists():
    # What the other tests prove only holds if glibc could not have done it
    # alone: where the program runs, no zh_CN locale exists (`locale -a`;
    # on this machine none is generated at all, LOCPATH makes sure).
    p = subprocess.run(["locale", "-a"], capture_output=True, text=True,
                       env={"LOCPATH": NO_LOCALES, "PATH": "/usr/bin:/bin"})
    names = p.stdout.split()
    assert "C.utf8" in names and not [n for n in names if n.lower().startswith("zh")], names


@pytest.mark.parametrize("env", ZH_ENVS)
def test_help_and_usage_errors_follow_the_locale_in_chinese(env):
    p = lrun(None, "--help", env=env)
    assert p.returncode == OK
    assert p.stdout.startswith("certreg-admin 是 certreg 的管理工具"), p.stdout
    assert "用法：" in p.stdout and "命令：" in p.stdout and "退出状态" in p.stdout
    p = lrun(None, "unit", "add", "--help", env=env)
    assert p.returncode == OK and "按单位登记号" in p.stdout and "全局选项" in p.stdout
    p = lrun("host=/nonexistent", "unit", "add", "123456", env=env)
    assert p.returncode == USAGE
    assert p.stderr.startswith("certreg-admin: 错误: 必须给出选项 --name\n"), p.stderr
    assert "certreg-admin: 提示: 请用“certreg-admin unit add --help”查看说明。" in p.stderr


@pytest.mark.parametrize("env", EN_ENVS)
def test_help_and_usage_errors_stay_english_otherwise(env):
    p = lrun(None, "--help", env=env)
    assert p.returncode == OK and p.stdout.startswith("certreg-admin manages certreg")
    p = lrun("host=/nonexistent", "unit", "add", "123456", env=env)
    assert p.returncode == USAGE
    assert p.stderr.startswith("certreg-admin: error: option --name is required\n"), p.stderr


def test_every_command_has_chinese_help():
    for group_cmd in re.findall(r"^  ([a-z]+(?: [a-z][a-z-]*)?)(?: |$)",
                                lrun(None, "--help", env=EN).stdout, re.M):
        en = lrun(None, *group_cmd.split(), "--help", env=EN)
        zh = lrun(None, *group_cmd.split(), "--help", env=ZH)
        assert en.returncode == zh.returncode == OK, group_cmd
        assert re.search(r"[\u4e00-\u9fff]", zh.stdout), (group_cmd, zh.stdout)
        assert not re.search(r"[\u4e00-\u9fff]", en.stdout), (group_cmd, en.stdout)


def test_a_refusal_of_the_database_in_chinese_names_the_rule_then_the_detail(org):
    args = ["unit", "set-status", org.dc_unit, "closed", "--reason", "测试"]
    en = lrun(org.aud, *args, env=EN)
    zh = lrun(org.aud, *args, env=ZH)
    assert en.returncode == zh.returncode == REFUSED
    assert en.stderr.startswith("certreg-admin: error: ") and "错误" not in en.stderr
    # The kind of refusal (CR007) in Chinese, the database's own words after it.
    first, detail = zh.stderr.splitlines()[:2]
    assert first == "certreg-admin: 错误: 您没有权限进行此操作", zh.stderr
    assert detail == "certreg-admin: 详细信息: " + en.stderr.splitlines()[0].split(": ", 2)[2]
    # Another office's unit does not exist for an operator (CR002).
    zh = lrun(org.op_xc, *args, env=ZH)
    assert zh.returncode == REFUSED
    assert zh.stderr.startswith("certreg-admin: 错误: 没有找到该记录\ncertreg-admin: 详细信息: ")
    # A refusal of the CLI itself: a missing record.
    zh = lrun(org.op_dc, "unit", "show", "999999999", env=ZH)
    assert zh.returncode == REFUSED and "certreg-admin: 错误: 未找到单位 999999999" in zh.stderr


def test_table_headings_in_chinese_line_up(org):
    c = org.owner
    ok_en = lrun(c, "unit", "list", env=EN)
    p = lrun(c, "unit", "list", env=ZH)
    assert p.returncode == ok_en.returncode == OK
    lines = p.stdout.splitlines()
    header, body, summary = lines[0], lines[1:-1], lines[-1]
    assert summary == "共 2 个单位", summary
    heads = ("单位登记号", "名称", "管理部", "统一社会信用代码", "状态")
    want = [column(header, h)[0] for h in heads]
    units = {org.dc_unit: ("北京东城测试科技有限公司", "DC01"),
             org.xc_unit: ("West Ltd", "XC01")}
    for line in body:
        regno = line.split()[0]
        name, office = units[regno]
        got, at = [], 0
        for value in (regno, name, office):
            col, at = column(line, value, at)
            got.append(col)
        # The schema's words in Chinese too ("active" in English and JSON).
        col, at = column(line, "正常", at)
        assert got == want[:3] and col == want[4], f"{line!r} misaligned: {got} != {want}"
    assert "active" in ok_en.stdout and "active" not in p.stdout
    # A record: the labels are the headings, their values in one column.
    p = lrun(c, "unit", "show", org.dc_unit, env=ZH)
    labels = [line for line in p.stdout.splitlines() if "：" in line][:4]
    assert [line.split("：")[0] for line in labels] == ["单位登记号", "名称", "管理部", "统一社会信用代码"]
    starts = set()
    for line in labels:
        label, rest = line.split("：", 1)
        starts.add(width(label) + width("：") + len(rest) - len(rest.lstrip()))
    assert len(starts) == 1, labels


def test_json_is_the_same_in_both_languages(org, pki):
    c = org.owner
    ok_bind = lrun(c, "key", "bind", "--cert", pki.leaf("bjca")["pem"], "--unit", org.dc_unit,
                   "--ticket", "J-1", env=ZH)
    assert ok_bind.returncode == OK and "已关联开通到单位" in ok_bind.stdout
    commands = [["unit", "list"], ["unit", "show", org.dc_unit], ["office", "list"],
                ["operator", "list"], ["pending", "list"], ["key", "list", "--unit", org.dc_unit],
                ["key", "show", pki.leaf("bjca")["key_id"]], ["audit", "verify"],
                ["db", "status"]]
    for args in commands:
        en = lrun(c, "--json", *args, env=EN)
        zh = lrun(c, *args, "--json", env=ZH)
        assert en.returncode == zh.returncode == OK, (args, zh.stderr)
        assert en.stdout == zh.stdout, args
        json.loads(zh.stdout)
    # Errors: the same object ("error" code, English message), the same exit code.
    for conn, args in ((org.aud, ["unit", "set-status", org.dc_unit, "closed", "--reason", "x"]),
                       (c, ["unit", "show", "999999999"]),
                       (c, ["unit", "add", "123456"]),
                       ("host=/nonexistent", ["unit", "list"])):
        en = lrun(conn, "--json", *args, env=EN)
        zh = lrun(conn, "--json", *args, env=ZH)
        assert en.returncode == zh.returncode != OK, args
        assert en.stdout == zh.stdout, args
        assert "错误" not in zh.stderr, args


def test_audit_verify_refuses_an_operator_in_chinese(org):
    """An operator reads only its offices' audit rows, so cannot verify the
    chain: refused in the language of the run, not told "intact"."""
    zh = lrun(org.op_dc, "audit", "verify", env=ZH)
    assert zh.returncode == REFUSED and zh.stdout == "", zh.stdout
    assert "请由主管或审计员执行" in zh.stderr, zh.stderr
    en = lrun(org.op_dc, "audit", "verify", env=EN)
    assert en.returncode == REFUSED and "ask a supervisor or an auditor" in en.stderr
    assert lrun(org.aud, "audit", "verify", env=ZH).stdout.startswith("审计日志完好")


def test_cert_check_prints_the_outcome_message_in_the_language(pki):
    leaf = pki.leaf("ec-ok")
    trusted = ["--cert", leaf["pem"], "--chain", leaf["chain"], "--ca", pki.path("ca/trust.pem")]
    untrusted = ["--cert", leaf["pem"], "--ca", pki.path("ca/trust.pem")]   # no intermediate
    # The outcome texts are common/outcome.c's, in the matching language,
    # for a refusal (on OK the key association still decides the login).
    for args, code, zh_text, en_text in (
            (untrusted, REFUSED, "证书不是由本系统认可的证书颁发机构签发的。",
             "The certificate was not issued by a certificate authority this system trusts."),):
        zh = lrun(None, "cert", "check", *args, env=ZH)
        en = lrun(None, "cert", "check", *args, env=EN)
        assert zh.returncode == en.returncode == code
        assert zh.stdout.startswith("结果代码：") and en.stdout.startswith("outcome:     ")
        assert re.search(r"^说明：\s+" + re.escape(zh_text) + "$", zh.stdout, re.M), zh.stdout
        assert re.search(r"^message:\s+" + re.escape(en_text) + "$", en.stdout, re.M), en.stdout
        # Labels of one width: the values start in one column.
        starts = {width(m.group(0)) for m in re.finditer(r"^\S+?[：:]\s*", zh.stdout, re.M)}
        assert len(starts) == 1, zh.stdout
    ok_zh = lrun(None, "cert", "check", *trusted, env=ZH)
    assert ok_zh.returncode == OK and "说明" not in ok_zh.stdout, ok_zh.stdout
    for args, code in ((trusted, OK), (untrusted, REFUSED)):
        zh = lrun(None, "--json", "cert", "check", *args, env=ZH)
        en = lrun(None, "--json", "cert", "check", *args, env=EN)
        assert zh.stdout == en.stdout and zh.returncode == en.returncode == code


# --- the catalogue ---------------------------------------------------------------

def test_every_text_marked_for_translation_has_a_chinese_one(tmp_path):
    """xgettext over today's sources; every text in po/zh_CN.po, translated,
    not fuzzy; and po/certreg-admin.pot regenerated (`make pot`)."""
    fresh = tmp_path / "fresh.pot"
    p = subprocess.run(["make", "-s", "-C", str(REPO), "pot", f"POT={fresh}"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    p = subprocess.run(["msgcmp", str(REPO / "po/zh_CN.po"), str(fresh)],
                       capture_output=True, text=True)
    assert p.returncode == 0, "texts without a Chinese translation:\n" + p.stderr
    p = subprocess.run(["msgfmt", "--check", "--statistics", "-o", "/dev/null",
                        str(REPO / "po/zh_CN.po")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(r"\d+ translated messages\.\n", p.stderr), p.stderr
    assert msgids(fresh) == msgids(REPO / "po/certreg-admin.pot"), "run make pot"


def msgids(pot):
    p = subprocess.run(["msgcat", "--no-location", "--sort-output", "--no-wrap", str(pot)],
                       capture_output=True, text=True, check=True)
    return [line for line in p.stdout.splitlines() if line.startswith(("msgid ", "msgid_plural "))]


def test_the_installed_program_finds_its_installed_catalogue(tmp_path):
    # The build tree's program reads build/locale; an installed one
    # PREFIX/share/locale (make install-admin, which the Debian package uses).
    assert (ADMIN.parent / "locale/zh_CN/LC_MESSAGES/certreg-admin.mo").is_file()
    root = tmp_path / "root"
    p = subprocess.run(["make", "-s", "-C", str(REPO), "install-admin", f"DESTDIR={root}"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    prefix = root / "usr/local"
    assert (prefix / "share/locale/zh_CN/LC_MESSAGES/certreg-admin.mo").is_file()
    binary = prefix / "bin/certreg-admin"
    p = run(None, "--help", binary=binary,
            env={"LC_ALL": "", "LANG": "zh_CN.UTF-8", "LOCPATH": NO_LOCALES})
    assert p.returncode == OK and p.stdout.startswith("certreg-admin 是"), p.stdout


# --- what a clerk pastes ---------------------------------------------------------

def test_a_key_id_is_taken_as_the_page_and_the_tables_show_it(org, db, pki):
    # The refusal page shows the key id in groups of four digits (read out
    # over the phone or sent from WeChat), the tables cut it with an
    # ellipsis; both, and full-width digits or blanks around, name the key.
    c = org.owner
    key = pki.leaf("bjca")["key_id"]
    record_refusal(db, pki, "bjca")
    fw = str.maketrans("0123456789abcdef", "０１２３４５６７８９ａｂｃｄｅｆ")
    for typed in (" ".join(key[i:i + 4] for i in range(0, 64, 4)),     # the page, whole
                  " ".join(key[i:i + 4] for i in range(0, 16, 4)),     # its first groups
                  key[:16] + "…", key[:16] + "...",                    # a table cell
                  "\u3000" + key[:12].upper() + " \t",
                  key[:12].translate(fw)):
        p = lrun(c, "key", "show", typed, env=ZH)
        assert p.returncode == OK, (typed, p.stderr)
        assert p.stdout.startswith("KEY：" + key + "\n"), (typed, p.stdout)
    p = lrun(c, "key", "bind", key[:4] + " " + key[4:8] + " " + key[8:12], "--unit", org.dc_unit,
             "--ticket", "J-9", env=ZH)
    assert p.returncode == OK and key in p.stdout, p.stderr
    p = lrun(c, "audit", "log", "--key", key[:16] + "…", env=ZH)
    assert p.returncode == OK and "关联开通" in p.stdout, p.stderr
    # Still refused: too few digits, a character that is no hex digit, an
    # ellipsis in the middle; nothing changed by any of them.
    for typed in (key[:4] + " " + key[4:7], key[:8] + "g", key[:8] + "…" + key[8:12]):
        p = lrun(c, "key", "suspend", typed, "--reason", "测试", env=ZH)
        assert p.returncode == USAGE and p.stderr.startswith("certreg-admin: 错误: KEY 编号"), \
            (typed, p.stderr)
    assert js_status(c, key) == "approved"


def js_status(conninfo, key):
    return json.loads(lrun(conninfo, "--json", "key", "show", key, env=EN).stdout)["association"]["status"]


def test_a_registration_number_pasted_with_blanks_or_full_width_digits(org):
    # Copied from an Excel cell or a WeChat message: blanks around it
    # (U+3000 too), full-width digits. The number is the same unit's.
    c = org.owner
    fw = org.dc_unit.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    for typed in (" " + org.dc_unit + " ", "\u3000" + org.dc_unit + "\u3000", fw,
                  org.dc_unit + "\t"):
        p = lrun(c, "unit", "show", typed, env=ZH)
        assert p.returncode == OK and "北京东城测试科技有限公司" in p.stdout, (typed, p.stderr)
        p = lrun(c, "key", "list", "--unit", typed, env=ZH)
        assert p.returncode == OK, (typed, p.stderr)
        p = lrun(c, "audit", "log", "--unit", typed, env=ZH)
        assert p.returncode == OK and "登记单位" in p.stdout, (typed, p.stdout)
    p = lrun(c, "key", "bind", "deadbeef" + "0" * 56, "--unit", fw + " ", "--ticket", "J-2",
             env=ZH)
    assert p.returncode == OK and "已关联开通到单位 " + org.dc_unit + "\n" in p.stdout, p.stderr
    p = lrun(c, "unit", "set-status", " " + org.xc_unit, "closed", "--reason", "测试", env=ZH)
    assert p.returncode == OK, p.stderr
    p = lrun(c, "--json", "unit", "add", "１２３４５６７ ", "--name", "北京新单位（集团）有限公司",
             "--office", "DC01", env=ZH)
    assert p.returncode == OK and json.loads(p.stdout)["registration_no"] == "1234567", p.stdout
    # The name keeps its full-width brackets: only identifiers are cleaned.
    p = lrun(c, "--json", "unit", "show", "1234567", env=EN)
    assert json.loads(p.stdout)["name"] == "北京新单位（集团）有限公司", p.stdout
    # A number that is not there is named as cleaned, with what to do next.
    p = lrun(c, "unit", "show", " １１０１０１００００９ ", env=ZH)
    assert p.returncode == REFUSED
    assert p.stderr.startswith("certreg-admin: 错误: 未找到单位 11010100009\n"), p.stderr
    assert "certreg-admin unit list" in p.stderr, p.stderr


def test_cert_check_of_an_expired_certificate_says_since_when(pki):
    leaf = pki.leaf("expired")
    args = ["cert", "check", "--cert", leaf["pem"], "--chain", leaf["chain"],
            "--ca", pki.path("ca/trust.pem")]
    zh = lrun(None, *args, env=ZH)
    en = lrun(None, *args, env=EN)
    assert zh.returncode == en.returncode == REFUSED
    assert re.search(r"^有效期：.*（已过期 \d+ 天）$", zh.stdout, re.M), zh.stdout
    assert re.search(r"^valid: .*\(expired \d+ days? ago\)$", en.stdout, re.M), en.stdout
    assert "剩余 -" not in zh.stdout and "-" not in en.stdout.split("valid:")[1].split("(")[1]
    ok_zh = lrun(None, "cert", "check", "--cert", pki.leaf("ec-ok")["pem"], "--chain",
                 pki.leaf("ec-ok")["chain"], "--ca", pki.path("ca/trust.pem"), env=ZH)
    assert re.search(r"^有效期：.*（剩余 \d+ 天）$", ok_zh.stdout, re.M), ok_zh.stdout


def test_a_file_that_is_no_certificate_is_refused_in_chinese(org, pki, tmp_path):
    # A .p7b export, a key file or a text file: the clerk reads what is wrong
    # in Chinese and which files to give instead.
    p7b = tmp_path / "单位证书.p7b"
    subprocess.run(["openssl", "crl2pkcs7", "-nocrl", "-certfile", pki.leaf("bjca")["pem"],
                    "-outform", "DER", "-out", str(p7b)], check=True)
    for f in (p7b, pki.leaf("bjca")["key"]):
        for args in (["key", "show", "--cert", f],
                     ["key", "bind", "--cert", f, "--unit", org.dc_unit, "--ticket", "J-3"]):
            p = lrun(org.owner, *args, env=ZH)
            assert p.returncode == REFUSED, (args, p.stderr)
            lines = p.stderr.splitlines()
            assert lines[0] == f"certreg-admin: 错误: {f}: 不是 PEM 或 DER 格式的证书", p.stderr
            assert lines[-1].startswith("certreg-admin: 提示: ") and ".cer" in lines[-1], p.stderr
    assert json.loads(lrun(org.owner, "--json", "pending", "list", env=EN).stdout) == []


def test_a_database_out_of_reach_says_what_to_check(db):
    # libpq's words name a socket or a role; the clerk also reads what to
    # check and whom to ask. Exit 3 and --json unchanged.
    for conninfo in ("host=/nonexistent", db.conninfo_as("nosuch_login")):
        p = lrun(conninfo, "unit", "list", env=ZH)
        assert p.returncode == 3 and p.stderr.startswith("certreg-admin: 错误: "), p.stderr
        assert p.stderr.splitlines()[-1].startswith("certreg-admin: 提示: 请检查"), p.stderr
        assert "--db" in p.stderr and "CERTREG_DB" in p.stderr, p.stderr
        assert json.loads(lrun(conninfo, "--json", "unit", "list", env=ZH).stdout)["error"] == \
            "database_unreachable"


# --- a counter clerk's day (docs/SECURITY.md, "a counter clerk's day in Chinese") ---

def test_pending_list_finds_the_key_by_the_id_the_refusal_page_showed(org, db, pki):
    # The page tells the user to give the clerk its KEY 编号; the clerk looks
    # for it among the pending registrations. Before: "共 0 个待关联登记的 KEY".
    key = pki.leaf("bjca-other")["key_id"]
    record_refusal(db, pki, "bjca-other")
    record_refusal(db, pki, "bjca-uid")
    fw = str.maketrans("0123456789abcdef", "０１２３４５６７８９ａｂｃｄｅｆ")
    for typed in (key[:4] + " " + key[4:8], key[:16].upper() + "…", key[:12].translate(fw),
                  " ".join(key[i:i + 4] for i in range(0, 64, 4))):
        p = lrun(org.op_dc, "--json", "pending", "list", "--search", typed, env=ZH)
        assert p.returncode == OK, (typed, p.stderr)
        assert [r["key_id"] for r in json.loads(p.stdout)] == [key], (typed, p.stdout)
        p = lrun(org.op_dc, "pending", "list", "--search", typed, env=ZH)
        assert p.stdout.splitlines()[-1] == "共 1 个待关联登记的 KEY", (typed, p.stdout)
    # Fewer than 8 digits is no key id (a credit code fragment, say): no key by its id.
    p = lrun(org.op_dc, "--json", "pending", "list", "--search", key[:7], env=ZH)
    assert key not in p.stdout
    p = lrun(None, "pending", "list", "--help", env=ZH)
    assert "KEY 编号以" in p.stdout, p.stdout


def test_pending_list_search_drops_blanks_pasted_around_the_text(org, db, pki):
    """A name or credit code copied from a form or a chat keeps a blank at
    an end (an ideographic space typed with a Chinese input method): it was
    searched for, and the clerk saw no key."""
    key = pki.leaf("bjca-other")["key_id"]
    record_refusal(db, pki, "bjca-other")
    (row,) = json.loads(lrun(org.op_dc, "--json", "pending", "list", env=ZH).stdout)
    fragment = row["subject"].split("=", 1)[1][:6]
    for typed in (f" {fragment}", f"{fragment}\u3000", f"\t\u3000{fragment}  "):
        p = lrun(org.op_dc, "--json", "pending", "list", "--search", typed, env=ZH)
        assert p.returncode == OK, (typed, p.stderr)
        assert [r["key_id"] for r in json.loads(p.stdout)] == [key], (typed, row)


def test_pending_list_search_of_blanks_only_is_refused(org, db, pki):
    """An empty cell pasted into --search (a blank, an ideographic space)
    was trimmed to nothing and matched every pending key: the clerk read
    the whole list as the search's result and could bind the wrong key."""
    record_refusal(db, pki, "bjca-other")
    for typed in ("", " ", "\u3000", "\t\u200b "):
        p = lrun(org.op_dc, "pending", "list", "--search", typed, env=ZH)
        assert p.returncode == USAGE, (typed, p.stdout)
        assert p.stdout == "", (typed, p.stdout)
        assert p.stderr.startswith("certreg-admin: 错误: --search 需要"), p.stderr
        p = lrun(org.op_dc, "--json", "pending", "list", "--search", typed, env=ZH)
        assert p.returncode == USAGE and "key_id" not in p.stdout, (typed, p.stdout)



def test_unit_list_search_in_chinese(org, db):
    """A unit phones and gives its name: the clerk reads the help, the
    result and a refusal of an empty search in Chinese; --json stays as it is."""
    ok_add = run(org.owner, "unit", "add", "110106000001", "--name", "丰台测试单位", "--office",
                 "DC01")
    assert ok_add.returncode == OK, ok_add.stderr
    p = lrun(None, "unit", "list", "--help", env=ZH)
    assert p.returncode == OK, p.stderr
    assert "[--office CODE] [--search TEXT] [--limit N]" in p.stdout, p.stdout
    assert "--search TEXT  只列出名称或统一社会信用代码中含有 TEXT 的单位" in p.stdout, p.stdout
    assert "--limit N      最多列出 N 个单位（默认全部列出）" in p.stdout, p.stdout
    p = lrun(org.op_dc, "unit", "list", "--search", "丰台", env=ZH)
    assert p.returncode == OK, p.stderr
    lines = p.stdout.splitlines()
    assert "丰台测试单位" in lines[1] and lines[-1] == "共 1 个单位", p.stdout
    p = lrun(org.op_dc, "--json", "unit", "list", "--search", "丰台", env=ZH)
    assert [u["registration_no"] for u in json.loads(p.stdout)] == ["110106000001"]
    p = lrun(org.op_xc, "unit", "list", "--search", "丰台", env=ZH)
    assert p.returncode == OK and p.stdout.splitlines()[-1] == "共 0 个单位", p.stdout
    for typed in ("", "\u3000"):
        p = lrun(org.op_dc, "unit", "list", "--search", typed, env=ZH)
        assert p.returncode == USAGE and p.stdout == "", p.stdout
        assert p.stderr.startswith("certreg-admin: 错误: --search 需要"), p.stderr
    # The new program before db migrate.
    db.sql("DROP FUNCTION certreg.unit_search(text, text, text)")
    p = lrun(org.op_dc, "unit", "list", "--search", "丰台", env=ZH)
    assert p.returncode == 3, p.stderr
    assert "certreg-admin: 提示: --search 需要本版本的数据库结构（迁移 016）" in p.stderr, p.stderr

def test_key_show_says_why_a_certificate_was_refused_in_the_clerk_s_words(org, db, pki):
    """key show lists the certificates certregd refused before it looked
    the key up; the clerk saw only the code (CERT_REVOKED) where the user's
    page said 证书已被吊销. People get the page's words; --json keeps the
    code."""
    leaf = pki.leaf("ec-ok")
    db.sql(f"SELECT certreg.record_refusal('{leaf['key_id']}', "
           f"'{cert_json(pki, 'ec-ok')}'::jsonb, 'CERT_REVOKED')")
    p = lrun(org.op_dc, "key", "show", leaf["key_id"], env=ZH)
    assert p.returncode == OK, p.stderr
    assert "证书已被吊销" in p.stdout and "CERT_REVOKED" not in p.stdout, p.stdout
    p = lrun(org.op_dc, "key", "show", leaf["key_id"], env=EN)
    assert "The certificate has been revoked" in p.stdout, p.stdout
    out = json.loads(lrun(org.op_dc, "--json", "key", "show", leaf["key_id"], env=ZH).stdout)
    assert [r["outcome"] for r in out["refusals"]] == ["CERT_REVOKED"], out


def test_cert_check_shows_the_validity_in_local_time_and_whole_days_since_expiry(pki):
    # The user reads the validity in the certificate tool in Beijing time,
    # and the page says 北京时间: the counter's check must not say UTC.
    leaf = pki.leaf("expired")
    args = ["cert", "check", "--cert", leaf["pem"], "--chain", leaf["chain"],
            "--ca", pki.path("ca/trust.pem")]
    beijing = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t + 8 * 3600))
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    env = {**ZH, "TZ": "Asia/Shanghai"}
    p = lrun(None, *args, env=env)
    line = [x for x in p.stdout.splitlines() if x.startswith("有效期：")][0]
    assert f"{beijing(leaf['not_before'])} 至 {beijing(leaf['not_after'])}（" in line, line
    assert "Z" not in line, line
    # A day and a minute after expiry is one day, not two; less than a day
    # is said so (not "0 天").
    na = leaf["not_after"]
    for at, want in ((na + 86400 + 60, "（已过期 1 天）"), (na + 3 * 86400 - 1, "（已过期 2 天）"),
                     (na + 60, "（已过期，不足 1 天）")):
        p = lrun(None, *args, "--at", iso(at), env=env)
        assert p.returncode == REFUSED
        assert re.search(r"^有效期：.*" + re.escape(want) + "$", p.stdout, re.M), (want, p.stdout)
    p = lrun(None, *args, "--at", iso(na + 86400 + 60), env={**EN, "TZ": "Asia/Shanghai"})
    assert "(expired 1 day ago)" in p.stdout, p.stdout
    # --json keeps RFC 3339 UTC.
    p = lrun(None, "--json", *args, env=env)
    assert json.loads(p.stdout)["certificate"]["not_after"] == iso(na), p.stdout


def test_refused_binds_and_changes_say_what_to_do_next_in_chinese(org, db, pki):
    c = org.owner
    bjca, other = pki.leaf("bjca"), pki.leaf("bjca-other")
    record_refusal(db, pki, "bjca")

    def refused(conn, *args):
        p = lrun(conn, *args, env=ZH)
        assert p.returncode == REFUSED, (args, p.stdout, p.stderr)
        hint = p.stderr.splitlines()[-1]
        assert hint.startswith("certreg-admin: 提示: "), (args, p.stderr)
        # Chinese, commands quoted or in brackets as they are typed.
        prose = re.sub(r"^certreg-admin: 提示: |“[^”]*”|（[a-z ]+）|--[a-z]+", "", hint)
        assert re.search(r"[\u4e00-\u9fff]", prose) and not re.search(r"[a-z]{3,}", prose), hint
        return hint

    # A registration number that is no unit (a typing mistake, or a new unit).
    hint = refused(c, "key", "bind", bjca["key_id"][:8], "--unit", "110109999999", "--ticket", "T")
    assert "unit add" in hint and "核对单位登记号" in hint, hint
    # A key prefix nobody has seen.
    hint = refused(c, "key", "bind", "0000 0000", "--unit", org.dc_unit, "--ticket", "T")
    assert "--cert" in hint and "pending list" in hint, hint
    # The wrong unit: the certificate's credit code is another unit's.
    hint = refused(org.op_dc, "key", "bind", "--cert", other["pem"], "--unit", org.dc_unit,
                   "--ticket", "T")
    assert "主管" in hint and "--force" in hint, hint
    # A key already bound to another unit.
    assert lrun(c, "key", "bind", bjca["key_id"][:8], "--unit", org.dc_unit, "--ticket", "T",
                env=ZH).returncode == OK
    hint = refused(c, "key", "bind", bjca["key_id"][:8], "--unit", org.xc_unit, "--ticket", "T")
    assert "注销" in hint and "key cancel" in hint, hint
    # Suspended twice, resumed while approved.
    assert lrun(c, "key", "suspend", bjca["key_id"][:8], "--reason", "挂失", env=ZH).returncode == OK
    hint = refused(c, "key", "suspend", bjca["key_id"][:8], "--reason", "挂失")
    assert "key show" in hint and "挂起" in hint, hint
    # A closed unit.
    assert lrun(c, "unit", "set-status", org.xc_unit, "closed", "--reason", "单位注销",
                env=ZH).returncode == OK
    hint = refused(c, "key", "bind", "--cert", other["pem"], "--unit", org.xc_unit, "--ticket", "T")
    assert "set-status" in hint and "active" in hint, hint
    # Nothing changed by any of them.
    assert js_status(c, bjca["key_id"]) == "suspended"
    assert json.loads(lrun(c, "--json", "key", "list", "--unit", org.xc_unit, env=EN).stdout) == []


def test_operator_add_names_the_role_in_chinese(db):
    p = lrun(db.conninfo, "office", "add", "DC09", "--name", "测试管理部", env=ZH)
    assert p.returncode == OK, p.stderr
    suffix = db.name[-8:]
    for role, word in (("operator", "操作员"), ("supervisor", "主管"), ("auditor", "审计员")):
        p = lrun(db.conninfo, "operator", "add", f"{role}_{suffix}", "--office", "DC09",
                 "--role", role, env=ZH)
        assert p.returncode == OK, p.stderr
        assert p.stdout == f"已将 {role}_{suffix} 以{word}身份加入管理部 DC09\n", p.stdout
    p = lrun(db.conninfo, "operator", "add", f"x_{suffix}", "--office", "DC09", env=EN)
    assert p.stdout == f"operator x_{suffix} added to office DC09\n", p.stdout
