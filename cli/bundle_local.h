/* The offline bundle commands of `muster`: keygen, bundle pack, bundle sign, bundle verify.
 * None talks to a server. Each takes (argc, argv) with argv[0] the subcommand name
 * ("keygen", "pack", "sign", "verify"), accepts --help and -o json|table among its own
 * arguments, prints results to stdout and errors to stderr, and returns the exit code:
 * 0 success, 1 the command failed (e.g. verification refused), 2 bad usage or bad input. */
#ifndef MU_CLI_BUNDLE_LOCAL_H
#define MU_CLI_BUNDLE_LOCAL_H

/* muster keygen --out PREFIX
 * Writes PREFIX.key (mode 0600) and PREFIX.pub; refuses to overwrite either. */
int mu_cli_keygen(int argc, char **argv);

/* muster bundle pack DIR --name NAME --version VERSION [--entry PATH] [--created-at SECS]
 *                    [--compress zstd|gzip] --out FILE
 * Prints the digest ("sha256:<hex>"). created-at defaults to $SOURCE_DATE_EPOCH, else 0. */
int mu_cli_bundle_pack(int argc, char **argv);

/* muster bundle sign FILE --key PREFIX.key
 * Writes FILE.sig. */
int mu_cli_bundle_sign(int argc, char **argv);

/* muster bundle verify FILE --pub PREFIX.pub [--pub ...] [--sig FILE.sig]
 *                      [--digest sha256:HEX] [--allow-unsigned]
 * Prints a manifest summary; exit 1 with the reason when verification fails. */
int mu_cli_bundle_verify(int argc, char **argv);

#endif
