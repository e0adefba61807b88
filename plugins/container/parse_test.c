/* Unit tests of the container task's parsers: image references, manifests and indexes
 * (media types, platform selection, layer types, bounds), image configs, WWW-Authenticate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "plugins/container/imageref.h"
#include "plugins/container/manifest.h"
#include "plugins/container/wwwauth.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define D64 "sha256:" H64

static void ref_ok(const char *text, const char *def, const char *reg, const char *repo, const char *tag,
                   const char *digest) {
  mu_imgref r;
  mu_err err = {0};
  int rc = mu_imgref_parse(text, def, &r, &err);
  if (rc != 0) fail_msg("%s: %s", text, err.msg);
  assert_string_equal(r.registry, reg);
  assert_string_equal(r.repository, repo);
  assert_string_equal(r.tag, tag);
  assert_string_equal(r.digest, digest);
}

static void ref_bad(const char *text, const char *def, const char *needle) {
  mu_imgref r;
  mu_err err = {0};
  assert_int_equal(mu_imgref_parse(text, def, &r, &err), MU_EINVAL);
  if (strstr(err.msg, needle) == NULL) fail_msg("%s: message \"%s\" lacks \"%s\"", text, err.msg, needle);
}

static void test_refs(void **state) {
  (void)state;
  ref_ok("127.0.0.1:5000/test/bb:oci", NULL, "127.0.0.1:5000", "test/bb", "oci", "");
  ref_ok("registry.example.com/a/b/c", NULL, "registry.example.com", "a/b/c", "latest", "");
  ref_ok("localhost/x", NULL, "localhost", "x", "latest", "");
  ref_ok("localhost:5000/x@" D64, NULL, "localhost:5000", "x", "", D64);
  ref_ok("r.io/x:v1.2-rc_3@" D64, NULL, "r.io", "x", "v1.2-rc_3", D64);
  ref_ok("[::1]:5000/x:1", NULL, "[::1]:5000", "x", "1", "");
  ref_ok("a.b/my__repo/x-y.z--w:t", NULL, "a.b", "my__repo/x-y.z--w", "t", "");
  ref_ok("busybox", "docker.io", "docker.io", "library/busybox", "latest", "");
  ref_ok("team/app:2", "docker.io", "docker.io", "team/app", "2", "");
  ref_ok("app:2", "reg.local:5000", "reg.local:5000", "app", "2", "");
  ref_bad("busybox", NULL, "short names are refused");
  ref_bad("library/busybox:1", "", "short names are refused");
  ref_bad("", NULL, "empty");
  ref_bad("r.io/X", NULL, "bad repository");
  ref_bad("r.io/a//b", NULL, "bad repository");
  ref_bad("r.io/a/", NULL, "bad repository");
  ref_bad("r.io/-a", NULL, "bad repository");
  ref_bad("r.io/a___b", NULL, "bad repository");
  ref_bad("r.io/a:", NULL, "bad tag");
  ref_bad("r.io/a:.x", NULL, "bad tag");
  ref_bad("r.io/a@sha256:abc", NULL, "digest");
  ref_bad("r.io/a@sha512:" H64, NULL, "digest");
  ref_bad(
      "r.io/a@sha256:"
      "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
      NULL, "digest");
  ref_bad("r.io:99999/a", NULL, "bad registry");
  ref_bad("r..io/a", NULL, "bad registry");
  ref_bad("-r.io/a", NULL, "bad registry");
  ref_bad("r.io:/a", NULL, "bad registry");
  ref_bad("r.io/a b", NULL, "bad repository");
  ref_bad("r.io/../etc", NULL, "bad repository");
  char big[700];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  ref_bad(big, NULL, "longer than");
  memcpy(big, "r.io/", 5);
  big[300] = '\0';
  ref_bad(big, NULL, "longer than");

  mu_imgref r;
  char buf[600];
  assert_int_equal(mu_imgref_parse("r.io:5/a/b:t@" D64, NULL, &r, NULL), 0);
  mu_imgref_format(&r, buf, sizeof buf);
  assert_string_equal(buf, "r.io:5/a/b:t@" D64);
  assert_string_equal(mu_imgref_reference(&r), D64);
  assert_true(mu_registry_is_loopback("127.0.0.1:5000"));
  assert_true(mu_registry_is_loopback("localhost"));
  assert_true(mu_registry_is_loopback("[::1]:80"));
  assert_true(mu_registry_is_loopback("127.9.9.9"));
  assert_false(mu_registry_is_loopback("128.0.0.1:5000"));
  assert_false(mu_registry_is_loopback("127.0.0.1.evil.com"));
  assert_false(mu_registry_is_loopback("localhost.evil.com"));
  assert_false(mu_registry_is_loopback("[::2]"));
}

static const char *manifest_oci =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D64
    "\",\"size\":10},"
    "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D64
    "\",\"size\":5},"
    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" D64
    "\",\"size\":6},"
    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" D64 "\",\"size\":7}]}";

static const char *index_doc =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":["
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:"
    "1111111111111111111111111111111111111111111111111111111111111111"
    "\",\"size\":1,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
    "{\"mediaType\":\"application/vnd.in-toto+json\",\"digest\":\"" D64
    "\",\"size\":1,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:"
    "2222222222222222222222222222222222222222222222222222222222222222"
    "\",\"size\":2,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:"
    "3333333333333333333333333333333333333333333333333333333333333333"
    "\",\"size\":3,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v7\"}}]}";

static void test_manifests(void **state) {
  (void)state;
  mu_manifest m;
  mu_err err = {0};
  mu_doc_kind kind;
  assert_int_equal(mu_image_manifest_parse(manifest_oci, strlen(manifest_oci), &m, &err), 0);
  assert_int_equal(m.n_layers, 3);
  assert_int_equal(m.compression[0], MU_LAYER_GZIP);
  assert_int_equal(m.compression[1], MU_LAYER_ZSTD);
  assert_int_equal(m.compression[2], MU_LAYER_TAR);
  assert_int_equal(m.config.size, 10);
  assert_int_equal(mu_doc_kind_of(NULL, manifest_oci, strlen(manifest_oci), &kind, &err), 0);
  assert_int_equal(kind, MU_DOC_MANIFEST);
  assert_int_equal(mu_doc_kind_of("application/vnd.docker.distribution.manifest.list.v2+json", "", 0, &kind, &err), 0);
  assert_int_equal(kind, MU_DOC_INDEX);
  assert_int_equal(mu_doc_kind_of(NULL, index_doc, strlen(index_doc), &kind, &err), 0);
  assert_int_equal(kind, MU_DOC_INDEX);
  const char *weird = "{\"mediaType\":\"application/vnd.foo\"}";
  assert_int_equal(mu_doc_kind_of("application/json", weird, strlen(weird), &kind, &err), MU_ENOTSUP);
  assert_non_null(strstr(err.msg, "application/vnd.foo"));

  const char *bad_layer =
      "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D64
      "\",\"size\":1},"
      "\"layers\":[{\"mediaType\":\"application/vnd.foo.tar+lz4\",\"digest\":\"" D64 "\",\"size\":1}]}";
  assert_int_equal(mu_image_manifest_parse(bad_layer, strlen(bad_layer), &m, &err), MU_ENOTSUP);
  assert_non_null(strstr(err.msg, "lz4"));
  const char *bad_digest = "{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:12\",\"size\":1},\"layers\":[]}";
  assert_int_equal(mu_image_manifest_parse(bad_digest, strlen(bad_digest), &m, &err), MU_EINVAL);
  const char *schema1 = "{\"schemaVersion\":1,\"fsLayers\":[]}";
  assert_int_equal(mu_image_manifest_parse(schema1, strlen(schema1), &m, &err), MU_ENOTSUP);
  const char *neg = "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D64 "\",\"size\":-1},\"layers\":[]}";
  assert_int_equal(mu_image_manifest_parse(neg, strlen(neg), &m, &err), MU_EINVAL);
  assert_int_equal(mu_image_manifest_parse("{}", 5u << 20, &m, &err), MU_ENOSPC);
  const char *dup = "{\"schemaVersion\":2,\"schemaVersion\":2}";
  assert_int_equal(mu_image_manifest_parse(dup, strlen(dup), &m, &err), MU_EINVAL);
}

static void test_platforms(void **state) {
  (void)state;
  mu_platform p;
  mu_descriptor d;
  mu_err err = {0};
  assert_int_equal(mu_platform_parse("linux/amd64", &p, &err), 0);
  assert_int_equal(mu_index_select(index_doc, strlen(index_doc), &p, &d, &err), 0);
  assert_int_equal(d.size, 2); /* the in-toto entry is skipped */
  assert_int_equal(mu_platform_parse("linux/arm64/v8", &p, &err), 0);
  assert_int_equal(mu_index_select(index_doc, strlen(index_doc), &p, &d, &err), 0);
  assert_int_equal(d.size, 1);
  assert_int_equal(mu_platform_parse("linux/arm64", &p, &err), 0);
  assert_int_equal(mu_index_select(index_doc, strlen(index_doc), &p, &d, &err), 0);
  assert_int_equal(d.size, 1);
  assert_int_equal(mu_platform_parse("linux/arm/v6", &p, &err), 0);
  assert_int_equal(mu_index_select(index_doc, strlen(index_doc), &p, &d, &err), MU_ENOENT);
  assert_non_null(strstr(err.msg, "linux/arm/v7"));
  assert_non_null(strstr(err.msg, "linux/arm64/v8"));
  assert_int_equal(mu_platform_parse("linux", &p, &err), MU_EINVAL);
  assert_int_equal(mu_platform_parse("linux/amd64/v1/x", &p, &err), MU_EINVAL);
  assert_int_equal(mu_platform_parse("linux/AMD64", &p, &err), MU_EINVAL);
  mu_platform_host(&p);
  assert_string_equal(p.os, "linux");
}

static void test_config(void **state) {
  (void)state;
  const char *doc =
      "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Entrypoint\":[\"/bin/cat\"],"
      "\"Cmd\":[\"/hello.txt\"],\"Env\":[\"A=1\",\"PATH=/bin\"],\"WorkingDir\":\"/w\",\"User\":\"65534:65534\","
      "\"StopSignal\":\"SIGINT\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D64 "\"]}}";
  mu_image_config c;
  mu_err err = {0};
  assert_int_equal(mu_image_config_parse(doc, strlen(doc), &c, &err), 0);
  assert_string_equal(c.entrypoint[0], "/bin/cat");
  assert_null(c.entrypoint[1]);
  assert_string_equal(c.cmd[0], "/hello.txt");
  assert_string_equal(c.env[1], "PATH=/bin");
  assert_string_equal(c.working_dir, "/w");
  assert_string_equal(c.user, "65534:65534");
  assert_string_equal(c.stop_signal, "SIGINT");
  assert_int_equal(c.n_diff_ids, 1);
  mu_image_config_free(&c);
  const char *nul = "{\"config\":{\"Cmd\":[\"a\\u0000b\"]}}";
  assert_int_equal(mu_image_config_parse(nul, strlen(nul), &c, &err), MU_EINVAL);
  const char *empty = "{\"config\":null}";
  assert_int_equal(mu_image_config_parse(empty, strlen(empty), &c, &err), 0);
  assert_null(c.cmd);
  mu_image_config_free(&c);
}

static void test_wwwauth(void **state) {
  (void)state;
  mu_challenge c;
  mu_err err = {0};
  const char *v =
      "Bearer "
      "realm=\"http://127.0.0.1:5057/token\",service=\"muster-test-registry\",scope=\"repository:private/bb:pull\"";
  assert_int_equal(mu_challenge_parse(v, strlen(v), &c, &err), 0);
  assert_int_equal(c.scheme, MU_AUTH_BEARER);
  assert_string_equal(c.realm, "http://127.0.0.1:5057/token");
  assert_string_equal(c.service, "muster-test-registry");
  assert_string_equal(c.scope, "repository:private/bb:pull");
  v = "basic realm=\"Registry Realm\"";
  assert_int_equal(mu_challenge_parse(v, strlen(v), &c, &err), 0);
  assert_int_equal(c.scheme, MU_AUTH_BASIC);
  v = "Bearer  realm = \"https://a/t\" , error=invalid_token , scope=\"a\\\"b\"";
  assert_int_equal(mu_challenge_parse(v, strlen(v), &c, &err), 0);
  assert_string_equal(c.scope, "a\"b");
  v = "Bearer service=\"x\"";
  assert_int_equal(mu_challenge_parse(v, strlen(v), &c, &err), MU_EINVAL);
  v = "Bearer realm=\"file:///etc/passwd\"";
  assert_int_equal(mu_challenge_parse(v, strlen(v), &c, &err), MU_EINVAL);
  v = "Bearer realm=\"http://a";
  assert_int_equal(mu_challenge_parse(v, strlen(v), &c, &err), MU_EINVAL);
  v = "Negotiate abc";
  assert_int_equal(mu_challenge_parse(v, strlen(v), &c, &err), MU_ENOTSUP);
  v = "Bearer realm=\"http://a\" junk";
  assert_int_equal(mu_challenge_parse(v, strlen(v), &c, &err), MU_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_refs),   cmocka_unit_test(test_manifests), cmocka_unit_test(test_platforms),
      cmocka_unit_test(test_config), cmocka_unit_test(test_wwwauth),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
