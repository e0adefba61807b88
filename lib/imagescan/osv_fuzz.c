/* Fuzzes the OSV record parser (osv.c). Properties: a refused record appends nothing and
 * says why; an accepted one appends exactly its line count of lines, each with the 8 fields
 * of the index, a known severity and no stray control byte. */
#include <stdlib.h>
#include <string.h>

#include "lib/fuzz/fuzz_util.h"
#include "lib/imagescan/feed.h"
#include "lib/imagescan/osv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mu_textbuf out = {0};
  mu_textbuf_append(&out, "x\n", 2);
  mu_osv_result res;
  mu_err err = {0};
  int rc = mu_osv_record_lines((const char *)data, size, &out, &res, &err);
  if (rc != 0) {
    MU_FUZZ_CHECK(out.len == 2 && err.msg[0] != '\0');
  } else {
    size_t lines = 0;
    char *scratch = malloc(out.len + 1);
    for (char *p = out.data + 2; *p;) {
      char *nl = strchr(p, '\n');
      MU_FUZZ_CHECK(nl != NULL);
      *nl = '\0';
      mu_feed_entry e;
      MU_FUZZ_CHECK(mu_feed_entry_parse(p, scratch, &e));
      MU_FUZZ_CHECK(strcmp(e.id, res.id) == 0);
      MU_FUZZ_CHECK(strstr("CRITICAL HIGH MEDIUM LOW UNKNOWN", e.severity) != NULL && e.severity[0]);
      for (const char *q = p; *q; q++) MU_FUZZ_CHECK((unsigned char)*q >= 0x20 || *q == '\t');
      lines++;
      p = nl + 1;
    }
    free(scratch);
    MU_FUZZ_CHECK(lines == res.lines);
  }
  free(out.data);
  return 0;
}
