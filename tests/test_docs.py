"""The user documentation says what the code does: every setting of
common/config.c's table is in certregd(8) and in the example configuration
with its default and its "(restart)", every metric the daemon emits is in
docs/OPERATIONS.md's table and every metric a document names is emitted,
certreg-admin's --help and certreg-admin(1) name the same commands and
options, the make targets README.md names exist, and a document's
'docs/X.md, "Heading"' and '](#anchor)' references resolve.

Read from the sources, not a running daemon: some metrics appear only
with OCSP, crl_fetch or read_conninfo configured.
"""
import re
import subprocess

from fixtures.cli import BUILD, REPO

CONFIG_ROW = re.compile(r'\{"(\w+)", "(\w+)", (CT_\w+), F\(\w+\), (NULL|"[^"]*"),'
                        r'\s*[^,]+,\s*[^,]+,\s*(true|false)')
USER_DOCS = ["README.md", "docs/OPERATIONS.md", "docs/HTTP-API.md", "docs/PORTAL.md",
             "docs/man/certregd.8", "docs/man/certreg-admin.1",
             "docs/man/certreg-crl-refresh.8", "deploy/certreg.conf.example"]
# Names of that form that are not metrics: roles, a schema, nginx upstreams.
NOT_METRICS = {"certreg_daemon", "certreg_operator", "certreg_supervisor", "certreg_auditor",
               "certreg_owner", "certreg_meta", "certreg_api", "certreg_portal"}


def config_table():
    """[(section, key, default or None, reloadable)] of common/config.c."""
    rows = CONFIG_ROW.findall((REPO / "common/config.c").read_text())
    assert len(rows) > 40
    return [(s, k, None if d == "NULL" else d.strip('"'), r == "true")
            for s, k, _, d, r in rows]


def example_settings():
    """{(section, key): (value, marked "(restart)")} of the example, set or
    commented out; the comment lines above a key are its description."""
    table = {(s, k) for s, k, _, _ in config_table()}
    out, section, comment = {}, None, ""
    for line in (REPO / "deploy/certreg.conf.example").read_text().splitlines():
        m = re.match(r"\[(\w+)\]", line)
        if m:
            section, comment = m.group(1), ""
            continue
        m = re.match(r";?\s*(\w+)\s*=\s*(.*)", line)
        if m and (section, m.group(1)) in table:
            out[(section, m.group(1))] = (m.group(2).strip(), "(restart)" in comment)
            comment = ""
        elif line.startswith(";"):
            comment += line
    return out


def test_example_config_shows_each_default_and_each_restart():
    """The example's promise: every key with its default, and "(restart)"
    on exactly the keys a reload cannot change."""
    example = example_settings()
    wrong = []
    for section, key, default, reloadable in config_table():
        value, restart = example[(section, key)]
        if default is not None and value != default:
            wrong.append(f"[{section}] {key} = {value}, default {default}")
        if restart == reloadable:
            wrong.append(f"[{section}] {key}: (restart) {'missing' if restart is False else 'wrong'}")
    assert wrong == []


def test_man_page_names_every_setting_in_its_section():
    man = (REPO / "docs/man/certregd.8").read_text()
    conf = man[man.index(".SH CONFIGURATION"):man.index(".SS OCSP")]
    missing = []
    for section, key, _, _ in config_table():
        start = conf.find(f"[{section}]")
        listed = set(re.findall(r"\w+", conf[start:conf.index(")", start)])) if start >= 0 else ()
        if key not in listed:
            missing.append(f"[{section}] {key}")
    assert missing == []


def emitted_metrics():
    """Every metric name the daemon's sources write."""
    src = "\n".join(p.read_text() for p in sorted((REPO / "server").glob("*.c")))
    names = set(re.findall(r"# TYPE ((?:certreg|process)_\w+)", src))
    names |= set(re.findall(r'"((?:certreg|process)_\w*[a-z])', src))
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}


def test_operations_lists_every_metric_emitted():
    emitted = emitted_metrics()
    assert len(emitted) > 40
    ops = (REPO / "docs/OPERATIONS.md").read_text()
    table = ops[ops.index("### Metrics"):ops.index("## What each outcome means")]
    assert sorted(n for n in emitted if not re.search(rf"`{n}\b", table)) == []


def test_every_metric_the_docs_name_is_emitted():
    emitted = emitted_metrics()
    unknown = set()
    for doc in USER_DOCS:
        for name in re.findall(r"\b((?:certreg|process)_[a-z_]*[a-z])\b(?!_\*)",
                               (REPO / doc).read_text()):
            name = re.sub(r"_(bucket|sum|count)$", "", name)
            if name not in emitted and name not in NOT_METRICS:
                unknown.add(f"{doc}: {name}")
    assert sorted(unknown) == []


def admin(*args):
    p = subprocess.run([str(BUILD / "certreg-admin"), *args], capture_output=True, text=True,
                       env={"LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"}, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_admin_help_and_man_page_name_the_same_commands_and_options():
    usage = admin("--help")
    commands = {}
    for line in usage[usage.index("Commands:"):usage.index("Options:")].splitlines()[1:]:
        m = re.match(r"  ((?:[a-z]+-?)+(?: [a-z]+(?:-[a-z]+)?)?)\b(.*)", line)
        if m:
            words = m.group(1).split()
            name = " ".join(words[:2]) if words[0] in {"db", "office", "operator", "unit",
                                                      "pending", "key", "audit", "cert"} \
                else words[0]
            own = admin(*name.split(), "--help").split("Global options")[0]
            # The usage line and the options, not the text that names others.
            commands[name] = set(re.findall(r"--[a-z-]+", own.splitlines()[1] + (
                own.split("Options:")[1] if "Options:" in own else "")))
    man = (REPO / "docs/man/certreg-admin.1").read_text()
    body = man[man.index(".SH COMMANDS"):man.index(".SH OUTPUT")].replace("\\-", "-")
    entries = {}
    for m in re.finditer(r"\.TP\n\.B ([a-z]+(?: [a-z][a-z-]*)?)(.*)", body):
        name = m.group(1) if m.group(1) in commands else m.group(1).split()[0]
        entries[name] = set(re.findall(r"--[a-z-]+", m.group(2)))
    assert sorted(commands) == sorted(entries)
    globals_ = {"--db", "--json", "--help"}
    differ = {c: (sorted(o - globals_ - entries[c]), sorted(entries[c] - o))
              for c, o in commands.items() if (o - globals_) != entries[c]}
    assert differ == {}


def test_make_targets_named_in_readme_exist():
    targets = set(re.findall(r"^([\w.-]+(?: [\w.-]+)*):", (REPO / "Makefile").read_text(), re.M))
    targets = {t for line in targets for t in line.split()}
    named = set(re.findall(r"`make ([a-z][\w-]*)", (REPO / "README.md").read_text()))
    named |= set(re.findall(r"^make ([a-z][\w-]*)", (REPO / "README.md").read_text(), re.M))
    named -= {"install"} if "install" in targets else set()
    assert sorted(named - targets) == []


def headings(path):
    return [re.sub(r"[`*]", "", m) for m in
            re.findall(r"^#{1,6} (.+?)\s*$", (REPO / path).read_text(), re.M)]


def slug(heading):
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def test_references_between_docs_resolve():
    broken = []
    for doc in USER_DOCS:
        text = (REPO / doc).read_text()
        flat = re.sub(r"\s+", " ", text.replace("\\-", "-"))
        for m in re.finditer(r"(docs/[A-Z-]+\.md)`?\)?,? \(?\"([^\"]+)\"", flat):
            target = REPO / m.group(1)
            name = m.group(2).replace("`", "")
            # A heading, or a paragraph that starts with that name in bold.
            if not target.exists() or not (
                    any(h.startswith(name) for h in headings(m.group(1)))
                    or f"**{name}" in target.read_text().replace("`", "")
                    or f"*{name}" in target.read_text().replace("`", "")):
                broken.append(f"{doc}: {m.group(1)}, \"{name}\"")
        if doc.endswith(".md"):
            anchors = {slug(h) for h in headings(doc)}
            broken += [f"{doc}: #{a}" for a in re.findall(r"\]\(#([\w-]+)\)", text)
                       if a not in anchors]
    assert broken == []


def test_sm2_logins_are_sent_to_the_signed_login_not_to_verify():
    """POST /v1/verify proves nothing about possession of the key, and a
    unit's certificate is no secret: the operators' guide once sent SM2
    users (who cannot use TLS) there, which a portal would have taken as a
    login for anyone holding a copy of the certificate."""
    text = (REPO / "docs/OPERATIONS.md").read_text()
    start = text.index("SM2 certificates cannot be used for TLS client authentication")
    paragraph = text[start:text.index("\n\n", start)]
    assert "/v1/login/signed" in paragraph, paragraph
    assert "never `POST /v1/verify`" in paragraph, paragraph
