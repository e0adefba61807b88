/* //lib/bundle:bundle_test — one binary running every bundle test group: version ordering,
 * packing, keys and signatures, and safe unpacking (see the *_test.c files beside it). */
#include <stdio.h>

int mu_test_version(void);
int mu_test_pack(void);
int mu_test_sign(void);
int mu_test_unpack(void);

int main(void) {
  int failed = 0;
  failed += mu_test_version();
  failed += mu_test_pack();
  failed += mu_test_sign();
  failed += mu_test_unpack();
  if (failed != 0) fprintf(stderr, "%d bundle test(s) failed\n", failed);
  return failed != 0 ? 1 : 0;
}
