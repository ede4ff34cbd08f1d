/*
 * The column tables of store/columns.h: each record's list expanded into
 * its struct eb_col entries, each field checked at compile time to have
 * its kind's type.
 */
#include "store/columns.h"

#define TABLE(C, LIST)                                                         \
	LIST(EB_COL_CHECK, , C)                                                \
	static const struct eb_col C##_cols[] = {LIST(EB_COL_DESC, , C)};      \
	const struct eb_columns eb_columns_##C = {                             \
	    C##_cols, sizeof(C##_cols) / sizeof(C##_cols[0]),                  \
	    sizeof(struct eb_store_##C)};                                      \
	void eb_columns_finish_##C(void *p)                                    \
	{                                                                      \
		eb_store_##C##_finish(p);                                      \
	}

TABLE(audit, EB_COLUMNS_AUDIT)
TABLE(flow, EB_COLUMNS_FLOW)
TABLE(code, EB_COLUMNS_CODE)
TABLE(grant, EB_COLUMNS_GRANT)
TABLE(token, EB_COLUMNS_TOKEN)
TABLE(key, EB_COLUMNS_KEY)
TABLE(mapping, EB_COLUMNS_MAPPING)
TABLE(scim_user, EB_COLUMNS_SCIM_USER)
