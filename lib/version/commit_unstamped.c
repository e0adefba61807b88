/* Unstamped builds (tests, plain `bazel build`): no commit, so nothing changes per commit. */
const char mu_build_commit_text[] = "";
