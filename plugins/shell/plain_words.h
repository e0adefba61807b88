/* A `script` with no shell syntax runs without a shell: "hostname" or "ls -l /tmp" are split
 * into words and exec'd directly (muster-exec looks the first word up in the task's PATH, as
 * sh would), which saves starting sh for every one-word command such as `muster run -- true`.
 *
 * Plain means: only [A-Za-z0-9] and _ - . / , : + @ % = in words separated by spaces or tabs,
 * no '=' in the first word (an assignment), and a first word that is no shell builtin or
 * keyword (those behave differently, or not at all, as programs) other than true and false.
 * Anything else (quotes, $, globs, ~, redirections, ;, |, &, newlines, comments, ...) needs
 * the shell, and so does any script given `args` or a non-default interpreter (the caller
 * checks those). */
#ifndef MU_SHELL_PLAIN_WORDS_H
#define MU_SHELL_PLAIN_WORDS_H

#include <stddef.h>

/* Splits script into at most max_words words written to ret_words, NULL-terminated (so
 * ret_words needs max_words + 1 slots). The words point into buf (cap bytes, the script is
 * copied there). Returns the word count, or 0 when script is not plain, has more than
 * max_words words or does not fit in buf. */
size_t mu_shell_plain_words(const char *script, char *buf, size_t cap, const char **ret_words, size_t max_words);

#endif
