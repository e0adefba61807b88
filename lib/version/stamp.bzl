"""commit_c: a C file holding STABLE_GIT_COMMIT from the stable workspace status."""

def _commit_c_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".c")
    ctx.actions.run_shell(
        inputs = [ctx.info_file],
        outputs = [out],
        # Only the commit key is read; a status without it (no --workspace_status_command)
        # gives "", which version.c prints as "unknown".
        command = """
commit=$(sed -n 's/^STABLE_GIT_COMMIT \\([0-9a-f]*\\(-dirty\\)\\{0,1\\}\\)$/\\1/p' "$1")
printf '/* generated from the stable workspace status */\\nconst char mu_build_commit_text[] = "%s";\\n' "$commit" > "$2"
""",
        arguments = [ctx.info_file.path, out.path],
        mnemonic = "MusterCommit",
    )
    return [DefaultInfo(files = depset([out]))]

commit_c = rule(implementation = _commit_c_impl)
