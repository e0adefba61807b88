/* CVSS v3.0/v3.1 base scores from a vector (FIRST's specification, section 7.1), for OSV
 * records that carry a vector and no severity word, and score -> severity level. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/imagescan/osv.h"

static double roundup(double x) {
  long i = lround(x * 100000.0);
  if (i % 10000 == 0) return (double)i / 100000.0;
  return (floor((double)i / 10000.0) + 1.0) / 10.0;
}

double mu_cvss3_base_score(const char *v) {
  if (v == NULL || (strncmp(v, "CVSS:3.0/", 9) != 0 && strncmp(v, "CVSS:3.1/", 9) != 0)) return -1;
  char av = 0, ac = 0, pr = 0, ui = 0, s = 0, c = 0, i = 0, a = 0;
  for (const char *p = v + 9; *p;) {
    const char *slash = strchr(p, '/');
    size_t l = slash ? (size_t)(slash - p) : strlen(p);
    char m[4] = "";
    char val = 0;
    if (l >= 3 && l <= 5 && p[l - 2] == ':') {
      snprintf(m, sizeof m, "%.*s", (int)(l - 2), p);
      val = p[l - 1];
    }
    if (strcmp(m, "AV") == 0) av = val;
    else if (strcmp(m, "AC") == 0) ac = val;
    else if (strcmp(m, "PR") == 0) pr = val;
    else if (strcmp(m, "UI") == 0) ui = val;
    else if (strcmp(m, "S") == 0) s = val;
    else if (strcmp(m, "C") == 0) c = val;
    else if (strcmp(m, "I") == 0) i = val;
    else if (strcmp(m, "A") == 0) a = val;
    p += l;
    if (*p == '/') p++;
  }
  double AV = av == 'N' ? 0.85 : av == 'A' ? 0.62 : av == 'L' ? 0.55 : av == 'P' ? 0.2 : -1;
  double AC = ac == 'L' ? 0.77 : ac == 'H' ? 0.44 : -1;
  double UI = ui == 'N' ? 0.85 : ui == 'R' ? 0.62 : -1;
  bool changed = s == 'C';
  double PR = pr == 'N' ? 0.85 : pr == 'L' ? (changed ? 0.68 : 0.62) : pr == 'H' ? (changed ? 0.5 : 0.27) : -1;
  double C = c == 'H' ? 0.56 : c == 'L' ? 0.22 : c == 'N' ? 0 : -1;
  double I = i == 'H' ? 0.56 : i == 'L' ? 0.22 : i == 'N' ? 0 : -1;
  double A = a == 'H' ? 0.56 : a == 'L' ? 0.22 : a == 'N' ? 0 : -1;
  if (AV < 0 || AC < 0 || UI < 0 || PR < 0 || C < 0 || I < 0 || A < 0 || (s != 'U' && s != 'C')) return -1;
  double iss = 1 - (1 - C) * (1 - I) * (1 - A);
  double impact = changed ? 7.52 * (iss - 0.029) - 3.25 * pow(iss - 0.02, 15) : 6.42 * iss;
  double expl = 8.22 * AV * AC * PR * UI;
  if (impact <= 0) return 0;
  double base = changed ? 1.08 * (impact + expl) : impact + expl;
  return roundup(base < 10 ? base : 10);
}

const char *mu_severity_of_score(double score) {
  if (score >= 9.0) return "CRITICAL";
  if (score >= 7.0) return "HIGH";
  if (score >= 4.0) return "MEDIUM";
  if (score > 0) return "LOW";
  return "UNKNOWN";
}
