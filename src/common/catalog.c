/*
 * catalog.c
 *		Which interface or peer a call means, and the one error for each
 *		that is not there.
 */
#include "common/common.h"

#include "utils/builtins.h"

#include "core/validate.h"

/*
 * Raise the error for an interface that wgpeer does not know.
 */
void
wgpeer_interface_not_registered(const char *ifname)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("interface \"%s\" is not registered with wgpeer", ifname),
			 errhint("Register it with wgpeer.wg_add_interface(); "
					 "SELECT name FROM wgpeer.interface lists those that are.")));
}

/*
 * Raise the error for an unknown peer id.
 */
void
wgpeer_peer_not_found(Datum peer_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_NO_DATA_FOUND),
			 errmsg("peer %s does not exist",
					DatumGetCString(DirectFunctionCall1(uuid_out, peer_id)))));
}

/*
 * The interface a call is about: the given name, or when it is NULL the
 * only registered interface.  A given name is only checked for form; the
 * caller's lookup reports it when it is not registered.  Must be called
 * inside SPI_connect().
 */
char *
wgpeer_resolve_interface(text *name)
{
	static SPIPlanPtr plan;
	bool		isnull;
	int64		count;

	if (name)
	{
		char	   *ifname = text_to_cstring(name);
		const char *why = wg_check_ifname(ifname);

		if (why)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid interface name \"%s\"", ifname),
					 errdetail("%s.", why)));
		return ifname;
	}

	wgpeer_exec(&plan,
				"SELECT count(*), string_agg(name, ', ' ORDER BY name),"
				" min(name) FROM wgpeer.interface",
				0, NULL, NULL, NULL);
	count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));
	if (count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no WireGuard interface is registered"),
				 errhint("Register one with wgpeer.wg_add_interface().")));
	if (count > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("interface must be given when several are registered"),
				 errdetail("The registered interfaces are: %s.",
						   SPI_getvalue(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 2)),
				 errhint("Pass interface => 'name'.")));
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
}
