"""mu_fuzz_target: one libFuzzer target and its corpus replay test (docs/testing.md, Fuzzing).

mu_fuzz_target(name = "selector_fuzz", srcs = ["selector_fuzz.c"], deps = [...]) makes
  :selector_fuzz         the fuzzer. Under --config=fuzz (clang, scripts/fuzz) it links
                         libFuzzer's main; under gcc it links lib/fuzz's replay main instead,
                         so it always builds. Tagged manual: //... does not build it twice.
  :selector_fuzz_replay  a cc_test (gcc, ASan in the normal suite) that feeds every file of
                         fuzz_corpus/selector_fuzz/ (seeds and regression-* files) to
                         LLVMFuzzerTestOneInput once.
  :selector_fuzz_corpus  the corpus files, which scripts/fuzz copies to a scratch dir.
"""

def mu_fuzz_target(name, srcs, deps = [], size = "small", **kwargs):
    corpus = native.glob(["fuzz_corpus/%s/*" % name])
    if not corpus:
        fail("%s: fuzz_corpus/%s/ needs at least one seed input" % (name, name))
    native.filegroup(
        name = name + "_corpus",
        srcs = corpus,
        tags = ["mu_fuzz_corpus"],
        testonly = True,
    )
    native.cc_binary(
        name = name,
        srcs = srcs,
        deps = deps + select({
            "//lib/fuzz:fuzzing": [],
            "//conditions:default": ["//lib/fuzz:replay_main"],
        }),
        linkopts = select({
            "//lib/fuzz:fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        tags = ["manual", "mu_fuzz"],
        testonly = True,
        **kwargs
    )
    native.cc_test(
        name = name + "_replay",
        size = size,
        srcs = srcs,
        deps = deps + ["//lib/fuzz:replay_main"],
        args = ["$(locations :%s_corpus)" % name],
        data = [":%s_corpus" % name],
        **kwargs
    )
