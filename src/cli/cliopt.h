/*
 * What the command-line tools share when reading their arguments.
 */
#ifndef EB_CLIOPT_H
#define EB_CLIOPT_H

/*
 * The value of option opt at argv[*i] ("--opt V", advancing *i, or
 * "--opt=V"), or NULL when argv[*i] is another option. *missing is set
 * when the option is there but has no value.
 */
const char *eb_cli_optval(int argc, char **argv, int *i, const char *opt,
                          int *missing);
/* 1 when f is one of Apple's model families, spelt exactly as devices
 * send it (iPhone, iPad, Mac, AppleTV, Watch, RealityDevice). */
int eb_cli_family_ok(const char *f);

#endif
