/* Fuzzes mu_shell_plain_words: whatever it accepts is words of the allowed characters only,
 * split where the script had blanks, in order, none empty, no more than asked; and a script
 * holding any other character is never accepted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/shell/plain_words.h"

static int plain_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != '\0' && strchr("_-./,:+@%= \t", c) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 2048) return 0;
  char script[2049];
  memcpy(script, data, size);
  script[size] = '\0';
  char buf[1024];
  const char *words[9];
  size_t n = mu_shell_plain_words(script, buf, sizeof buf, words, 8);
  if (n == 0) return 0;
  if (n > 8 || words[n] != NULL || strchr(words[0], '=') != NULL) abort();
  /* the words, rejoined, are the script without its blanks */
  char joined[2049] = "", squeezed[2049] = "";
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (words[i][0] == '\0') abort();
    for (const char *p = words[i]; *p; p++)
      if (!plain_char(*p) || *p == ' ' || *p == '\t') abort();
    strcat(joined, words[i]);
  }
  for (size_t i = 0; i < strlen(script); i++) {
    if (!plain_char(script[i])) abort();
    if (script[i] != ' ' && script[i] != '\t') squeezed[k++] = script[i];
  }
  squeezed[k] = '\0';
  if (strcmp(joined, squeezed) != 0) abort();
  return 0;
}
