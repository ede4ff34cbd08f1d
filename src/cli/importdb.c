/*
 * enrollbridge import-sqlite (see importdb.h).
 */
#include "cli/importdb.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "store/pg/pg_import.h"
#include "store/store.h"

static int
usage(void)
{
	fprintf(stderr,
	        "usage: enrollbridge import-sqlite -c FILE SQLITE_PATH\n");
	return 2;
}

/* Open (and so migrate) one database; 0 or -1, explained on stderr. */
static int
migrate_one(const struct eb_store_ops *ops, const char *target,
            const char *what)
{
	struct eb_store *s;
	char err[512];

	if (ops == NULL) {
		fprintf(stderr, "import-sqlite: %s: no backend for it\n", what);
		return -1;
	}
	if ((s = eb_store_open_flags(ops, target, 0, NULL, NULL, err,
	                             sizeof(err))) == NULL) {
		fprintf(stderr, "import-sqlite: %s: %s\n", what, err);
		return -1;
	}
	eb_store_close(s);
	return 0;
}

int
eb_cli_import_sqlite(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'}, {NULL, 0, NULL, 0}};
	struct eb_config_error cerr;
	struct eb_config *cfg;
	const char *config = NULL, *from;
	char err[1024];
	int ch, rc = 1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		if (ch != 'c')
			return usage();
		config = optarg;
	}
	if (config == NULL || optind != argc - 1)
		return usage();
	from = argv[optind];
	memset(&cerr, 0, sizeof(cerr));
	if ((cfg = eb_config_load(config, &cerr)) == NULL) {
		fprintf(stderr, "import-sqlite: %s: %s: %s\n",
		        cerr.file[0] ? cerr.file : config,
		        cerr.key[0] ? cerr.key : "-", cerr.reason);
		return 1;
	}
	eb_log_init(cfg->log_level, cfg->log_json);
	if (!cfg->database_pg) {
		fprintf(stderr,
		        "import-sqlite: %s: database: must name the "
		        "PostgreSQL database to import into\n",
		        cfg->file);
		goto out;
	}
	if (eb_store_target_is_pg(from)) {
		fprintf(stderr, "import-sqlite: %s: not an SQLite file\n",
		        from);
		goto out;
	}
	if (migrate_one(&eb_store_sqlite_ops, from, from) == -1 ||
	    migrate_one(eb_store_ops_for(cfg->database), cfg->database,
	                "PostgreSQL") == -1)
		goto out;
	if (eb_store_pg_import_sqlite(from, cfg->database, stdout, err,
	                              sizeof(err)) == -1) {
		fprintf(stderr, "import-sqlite: %s: nothing imported: %s\n",
		        from, err);
		goto out;
	}
	rc = 0;
out:
	eb_config_unref(cfg);
	return rc;
}
