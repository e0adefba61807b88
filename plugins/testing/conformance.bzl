"""mu_plugin_conformance_test: a plugin's conformance suite as a Bazel test (docs/plugins.md).

mu_plugin_conformance_test(name, plugin = "//plugins/x:libmuster_x.so", spec = "testdata/x.json")
runs `muster-plugin-test PLUGIN SPEC --conformance` (after starting the fixtures the test file
names, see run_conformance.sh; data = their files) with the agent's muster-exec and
muster-plugin-host, so the plugin is checked in-process (leaks under --config=asan, loop
stalls, cancel, timeout, leftovers, bounds) and once out of process.
"""

def mu_plugin_conformance_test(name, plugin, spec, args = [], data = [], size = "small", tags = [], **kwargs):
    native.sh_test(
        name = name,
        size = size,
        srcs = ["//plugins/testing:run_conformance.sh"],
        args = [
            "$(location //plugins/testing:muster-plugin-test)",
            "$(location %s)" % plugin,
            "$(location %s)" % spec,
            "--conformance",
            "--exec-helper",
            "$(location //agent/exec:muster-exec)",
            "--plugin-host",
            "$(location //agent/plugin:muster-plugin-host)",
        ] + args,
        data = [
            "//plugins/testing:muster-plugin-test",
            "//agent/exec:muster-exec",
            "//agent/plugin:muster-plugin-host",
            "//plugins/testing:testdata/http_fixture.py",
            plugin,
            spec,
        ] + data,
        tags = tags + ["exclusive", "no-sandbox"],
        **kwargs
    )
