/* Whether a shell script is a plain command line that needs no shell, and its words
 * (plain_words.h). */
#include "plugins/shell/plain_words.h"

#include <stdbool.h>
#include <string.h>

/* POSIX, dash and bash builtins and reserved words: as a first word they need the shell. */
static const char *const shell_words[] = {
    ".",       ":",       "alias",     "bg",       "bind",     "break",   "builtin", "caller",  "case",    "cd",
    "command", "compgen", "complete",  "compopt",  "continue", "coproc",  "declare", "dirs",    "disown",  "do",
    "done",    "echo",    "elif",      "else",     "enable",   "esac",    "eval",    "exec",    "exit",    "export",
    "fc",      "fg",      "fi",        "for",      "function", "getopts", "hash",    "help",    "history", "if",
    "in",      "jobs",    "kill",      "let",      "local",    "logout",  "mapfile", "popd",    "printf",  "pushd",
    "pwd",     "read",    "readarray", "readonly", "return",   "select",  "set",     "shift",   "shopt",   "source",
    "suspend", "test",    "then",      "time",     "times",    "trap",    "type",    "typeset", "ulimit",  "umask",
    "unalias", "unset",   "until",     "wait",     "while"};

static bool word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != '\0' && strchr("_-./,:+@%=", c) != NULL);
}

size_t mu_shell_plain_words(const char *script, char *buf, size_t cap, const char **ret_words, size_t max_words) {
  size_t len = strlen(script);
  if (len + 1 > cap) return 0;
  memcpy(buf, script, len + 1);
  size_t n = 0;
  for (char *p = buf; *p != '\0';) {
    if (*p == ' ' || *p == '\t') {
      *p++ = '\0';
      continue;
    }
    if (!word_char(*p) || n == max_words) return 0;
    ret_words[n++] = p;
    while (word_char(*p)) p++;
    if (*p != '\0' && *p != ' ' && *p != '\t') return 0;
  }
  if (n == 0 || strchr(ret_words[0], '=') != NULL) return 0;
  for (size_t i = 0; i < sizeof shell_words / sizeof *shell_words; i++)
    if (strcmp(ret_words[0], shell_words[i]) == 0) return 0;
  ret_words[n] = NULL;
  return n;
}
