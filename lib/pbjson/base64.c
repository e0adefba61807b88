/* Base64 for the JSON form of `bytes` fields: standard alphabet with padding on output; standard
 * or URL-safe, padded or not, on input (as the proto3 JSON mapping asks of parsers). */
#include <stdlib.h>
#include <string.h>

#include "lib/pbjson/internal.h"

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *mu_pbjson_b64_encode(const uint8_t *data, size_t len) {
  char *out = malloc((len + 2) / 3 * 4 + 1);
  if (out == NULL) {
    return NULL;
  }
  size_t o = 0;
  size_t i = 0;
  for (; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
    out[o++] = b64_chars[v >> 18 & 63];
    out[o++] = b64_chars[v >> 12 & 63];
    out[o++] = b64_chars[v >> 6 & 63];
    out[o++] = b64_chars[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)data[i] << 16;
    out[o++] = b64_chars[v >> 18 & 63];
    out[o++] = b64_chars[v >> 12 & 63];
    out[o++] = '=';
    out[o++] = '=';
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
    out[o++] = b64_chars[v >> 18 & 63];
    out[o++] = b64_chars[v >> 12 & 63];
    out[o++] = b64_chars[v >> 6 & 63];
    out[o++] = '=';
  }
  out[o] = '\0';
  return out;
}

static int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '+' || c == '-') {
    return 62;
  }
  if (c == '/' || c == '_') {
    return 63;
  }
  return -1;
}

int mu_pbjson_b64_decode(const char *text, uint8_t **ret_data, size_t *ret_len) {
  size_t len = strlen(text);
  while (len > 0 && text[len - 1] == '=') {
    len--;
  }
  if (len % 4 == 1 || strlen(text) - len > 2) {
    return -1;
  }
  *ret_data = NULL;
  *ret_len = 0;
  if (len == 0) {
    return 0;
  }
  uint8_t *out = malloc(len / 4 * 3 + 3);
  if (out == NULL) {
    return -2;
  }
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    int v = b64_value(text[i]);
    if (v < 0) {
      free(out);
      return -1;
    }
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (uint8_t)(acc >> bits & 0xff);
    }
  }
  *ret_data = out;
  *ret_len = o;
  return 0;
}
