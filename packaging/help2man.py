#!/usr/bin/env python3
"""Man pages from the binaries' own --help text (a build step: packaging/BUILD, genrule "man").

    help2man.py OUT_DIR MUSTER MUSTERD MUSTER_AGENT

writes OUT_DIR/muster.1 (the global help, then every command's `--help` from the command
table, which `muster --help` lists), OUT_DIR/musterd.8 and OUT_DIR/muster-agent.8. The help
text is kept as written (preformatted), so a man page never says something the binary's
--help does not.
"""
import os
import re
import subprocess
import sys

ENV = dict(os.environ, ASAN_OPTIONS="detect_leaks=0", MUSTER_CONFIG="/nonexistent",
           GRPC_VERBOSITY="NONE")


def run(*argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV,
                       timeout=60, check=False)
    return p.stdout.decode()


def esc(line):
    line = line.replace("\\", "\\e").replace("-", "\\-")
    if line.startswith((".", "'")):
        line = "\\&" + line
    return line


def block(text):
    out = [".nf"]
    out += [esc(l) for l in text.rstrip("\n").split("\n")]
    out.append(".fi")
    return out


def split_usage(text):
    """(synopsis lines, the rest) of a help text that starts with "usage:"."""
    lines = text.rstrip("\n").split("\n")
    n = 0
    while n < len(lines) and lines[n].strip() != "":
        n += 1
    syn = [re.sub(r"^usage: ", "", l).rstrip() for l in lines[:n]]
    syn = [re.sub(r"^       ", "", l) if l.startswith("       ") else l for l in syn]
    return syn, "\n".join(lines[n + 1:])


def page(name, section, summary, version, help_text, extra):
    syn, rest = split_usage(help_text)
    out = ['.TH %s %s "" "%s" "Muster"' % (name.upper().replace("-", "\\-"), section,
                                           esc(version))]
    out += [".SH NAME", "%s \\- %s" % (esc(name), esc(summary)), ".SH SYNOPSIS"]
    out += block("\n".join(syn))
    out += [".SH DESCRIPTION"] + block(rest)
    for title, body in extra:
        out += [".SH " + title] + (block(body) if isinstance(body, str) else body)
    return "\n".join(out) + "\n"


FILES_DAEMON = ("/etc/muster/%s.yaml\n    the configuration file (docs/configuration.md)\n"
                "/var/lib/muster\n    state: %s\n")
SEE_ALSO = ["muster(1), musterd(8), muster-agent(8), systemctl(1)"]


def main():
    out_dir, muster, musterd, agent = sys.argv[1:5]
    version = run(muster, "--version").strip()
    text = run(muster, "--help")
    commands = []
    seen = False
    for l in text.split("\n"):
        if l.startswith("Commands:"):
            seen = True
        elif seen and l.startswith("  ") and l.strip():
            commands.append(l.split()[0])
        elif seen and not l.strip() and commands:
            break
    cmd_pages = []
    for c in commands:
        cmd_pages += [".SS muster %s" % esc(c)] + block(run(muster, c, "--help"))
    files = ("~/.config/muster/config.yaml ($MUSTER_CONFIG)\n"
             "    the CLI config file: named contexts (address, TLS files, token)\n")
    with open(os.path.join(out_dir, "muster.1"), "w") as f:
        f.write(page("muster", "1", "run commands and jobs on a fleet, and manage it", version,
                     text, [("COMMANDS", cmd_pages), ("FILES", files),
                            ("SEE ALSO", [esc(SEE_ALSO[0])])]))
    for binary, name, summary, cfg, state in [
            (musterd, "musterd", "the Muster control plane", "musterd", "the local state dir"),
            (agent, "muster-agent", "the Muster agent: runs tasks on this host", "agent",
             "the spool: journal, bundle cache, task output")]:
        v = run(binary, "--version").strip()
        with open(os.path.join(out_dir, name + ".8"), "w") as f:
            f.write(page(name, "8", summary, v, run(binary, "--help"),
                         [("FILES", FILES_DAEMON % (cfg, state)),
                          ("SEE ALSO", [esc(SEE_ALSO[0])])]))


if __name__ == "__main__":
    main()
