/*
 * event.c
 *		The durable event log: wg_event_id(), the default of
 *		wgpeer.event.event_id through which every event is written, and
 *		wg_events(after, max), which reads them in order without gaps.
 *
 * Why the two must cooperate is explained in src/common/event_log.c.
 */
#include "sql/sql.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#define EVENTS_MAX_BATCH 10000

PG_FUNCTION_INFO_V1(wg_event_id);
PG_FUNCTION_INFO_V1(wg_events);
PG_FUNCTION_INFO_V1(wg_peer_event);

/*
 * The OIDs of wgpeer.event_id_seq and wgpeer.event, once looked up; see
 * event_relation().
 */
static Oid	event_seq_oid = InvalidOid;
static Oid	event_table_oid = InvalidOid;

/*
 * Relcache invalidation: forget both OIDs when either relation (or every
 * relation) is invalidated, as a DROP EXTENSION or a restore does.
 */
static void
event_relations_invalidate(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == event_seq_oid ||
		relid == event_table_oid)
		event_seq_oid = event_table_oid = InvalidOid;
}

/*
 * The OID of wgpeer's relation name (the event table or its sequence),
 * kept for the session in *cache, as every event needs both (two catalog
 * lookups by name per event were a measurable part of the event log's
 * cost), and forgotten on invalidation.
 */
static Oid
event_relation(Oid *cache, const char *name)
{
	static bool callback_registered = false;
	Oid			relid;

	if (OidIsValid(*cache))
		return *cache;
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(event_relations_invalidate, (Datum) 0);
		callback_registered = true;
	}
	relid = get_relname_relid(name, get_namespace_oid("wgpeer", false));
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("relation wgpeer.%s does not exist", name),
				 errhint("Update the extension: ALTER EXTENSION wgpeer UPDATE.")));
	*cache = relid;
	return relid;
}

/* The sequence event ids come from. */
static Oid
event_sequence(void)
{
	return event_relation(&event_seq_oid, "event_id_seq");
}

/*
 * Take a new event id, announced to readers before it is taken (see
 * event_log.c).
 */
static int64
take_event_id(void)
{
	Oid			seq = event_sequence();
	int64		id;

	wgpeer_event_id_taking();
	id = nextval_internal(seq, false);
	wgpeer_event_id_taken(id);
	return id;
}

/*
 * A new event id, announced to readers before it is taken (see
 * event_log.c).  Only the extension's own code writes events.
 */
Datum
wg_event_id(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(take_event_id());
}

/*
 * The id the sequence hands out next (1 before the first).
 */
static int64
event_next_id(void)
{
	Datum		last;
	LOCAL_FCINFO(fcinfo, 1);

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = ObjectIdGetDatum(event_sequence());
	fcinfo->args[0].isnull = false;
	last = pg_sequence_last_value(fcinfo);
	return fcinfo->isnull ? 1 : DatumGetInt64(last) + 1;
}

/*
 * wg_events(after, max): up to max events with ids above after, in id
 * order, stopping below the first id that some open transaction may still
 * commit.  A consumer that remembers the last id it read and passes it
 * next time reads every event exactly once, whatever crashed in between.
 * The horizon is fixed before the query's snapshot is taken, which is why
 * this needs READ COMMITTED (a newer snapshot per statement).  A standby
 * cannot know the horizon: the ids the primary's open transactions took
 * are announced in the primary's memory only, and its sequence runs ahead
 * of what it replayed; so it refuses.
 */
Datum
wg_events(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	static SPIPlanPtr plan;
	int64		after;
	int32		max;
	int64		horizon;
	Oid			types[3] = {INT8OID, INT8OID, INT4OID};
	Datum		values[3];

	if (PG_ARGISNULL(0) || PG_GETARG_INT64(0) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("after must be an event id of 0 or more"),
				 errhint("Pass 0 to read from the oldest event kept, or the "
						 "last event_id you read.")));
	if (PG_ARGISNULL(1) || PG_GETARG_INT32(1) < 1 ||
		PG_GETARG_INT32(1) > EVENTS_MAX_BATCH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max must be between 1 and %d", EVENTS_MAX_BATCH)));
	after = PG_GETARG_INT64(0);
	max = PG_GETARG_INT32(1);
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("wg_events() cannot run on a standby"),
				 errdetail("A standby cannot tell which event ids the "
						   "primary's open transactions hold: an event they "
						   "commit later would be skipped for ever."),
				 errhint("Read events from the primary (with libpq, connect "
						 "with target_session_attrs=read-write).")));
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("wg_events() cannot run in a %s transaction",
						IsolationIsSerializable() ? "SERIALIZABLE" :
						"REPEATABLE READ"),
				 errdetail("Its snapshot predates the point up to which events "
						   "are known to be complete."),
				 errhint("Read events in a READ COMMITTED transaction (the "
						 "default).")));
	if (!wgpeer_event_horizon(event_next_id(), &horizon))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("wg_events() needs wgpeer in shared_preload_libraries"),
				 errhint("Add wgpeer to shared_preload_libraries and restart "
						 "the server.")));

	InitMaterializedSRF(fcinfo, 0);
	values[0] = Int64GetDatum(after);
	values[1] = Int64GetDatum(horizon);
	values[2] = Int32GetDatum(max);
	SPI_connect();
	/* a statement of its own: its snapshot is taken after the horizon */
	wgpeer_exec(&plan,
				"SELECT * FROM wgpeer.event"
				" WHERE event_id > $1 AND event_id < $2"
				" ORDER BY event_id LIMIT $3",
				3, types, values, NULL);
	for (uint64 r = 0; r < SPI_processed; r++)
		tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[r]);
	SPI_finish();
	return (Datum) 0;
}

/*
 * A column of a peer row as a Datum (NULL flagged), found by name.
 */
static Datum
peer_column(HeapTuple tuple, TupleDesc desc, const char *name, bool *isnull)
{
	int			attnum = SPI_fnumber(desc, name);

	if (attnum <= 0)
		elog(ERROR, "wgpeer.peer has no column \"%s\"", name);
	return SPI_getbinval(tuple, desc, attnum, isnull);
}

/*
 * Whether two nullable columns of the old and new row differ.
 */
static bool
column_changed(HeapTuple old, HeapTuple new, TupleDesc desc, const char *name)
{
	bool		old_null;
	bool		new_null;
	Datum		a = peer_column(old, desc, name, &old_null);
	Datum		b = peer_column(new, desc, name, &new_null);
	int			attnum = SPI_fnumber(desc, name);
	Form_pg_attribute att = TupleDescAttr(desc, attnum - 1);

	if (old_null || new_null)
		return old_null != new_null;
	return !datumIsEqual(a, b, att->attbyval, att->attlen);
}

/*
 * The kind of event a change of status from old_status to new_status is,
 * or NULL when it is none (see the table in the README).
 */
static const char *
status_event(const char *old_status, const char *new_status)
{
	if (strcmp(new_status, "active") == 0 && strcmp(old_status, "creating") == 0)
		return "activated";
	if (strcmp(new_status, "suspended") == 0)
		return "suspended";
	if (strcmp(old_status, "suspended") == 0 &&
		(strcmp(new_status, "creating") == 0 || strcmp(new_status, "active") == 0))
		return "resumed";
	if (strcmp(new_status, "expired") == 0)
		return "expired";
	if (strcmp(new_status, "revoked") == 0)
		return "revoked";
	if (strcmp(old_status, "expired") == 0)
		return "renewed";
	return NULL;
}

/* the detail fields an event may carry, NULL when it has not */
typedef struct EventDetail
{
	Datum		address;		/* text */
	Datum		expires_at;		/* timestamptz */
	Datum		previous_expires_at;	/* timestamptz */
	Datum		plan_pending;	/* interval */
	Datum		reason;			/* text */
	Datum		revived;		/* bool */
	Datum		public_key;		/* text */
	Datum		previous_public_key;	/* text */
	bool		isnull[8];
} EventDetail;

/* Add key and a text value to the object being built in *state. */
static void
push_text(JsonbParseState **state, const char *key, Datum value)
{
	JsonbValue	k;
	JsonbValue	v;
	text	   *t = DatumGetTextPP(value);

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &k);
	v.type = jbvString;
	v.val.string.val = VARDATA_ANY(t);
	v.val.string.len = VARSIZE_ANY_EXHDR(t);
	pushJsonbValue(state, WJB_VALUE, &v);
}

/* Add key and a timestamptz value, in to_jsonb()'s format. */
static void
push_timestamptz(JsonbParseState **state, const char *key, Datum value)
{
	char		buf[MAXDATELEN + 1];

	JsonEncodeDateTime(buf, value, TIMESTAMPTZOID, NULL);
	push_text(state, key, CStringGetTextDatum(buf));
}

/* Add key and a non-string scalar (a number or a boolean). */
static void
push_scalar(JsonbParseState **state, const char *key, JsonbValue *v)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &k);
	pushJsonbValue(state, WJB_VALUE, v);
}

/*
 * The event's detail: an object of the fields it carries (none for a null
 * one), as jsonb_strip_nulls(jsonb_build_object(...)) of them would give.
 * Built here rather than by the INSERT: evaluating eight arguments, and
 * setting up their evaluation for each event's statement, cost about as
 * much as inserting the row.
 */
static Datum
event_detail(EventDetail *d)
{
	JsonbParseState *state = NULL;
	JsonbValue *result;
	JsonbValue	v;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	if (!d->isnull[0])
		push_text(&state, "address", d->address);
	if (!d->isnull[1])
		push_timestamptz(&state, "expires_at", d->expires_at);
	if (!d->isnull[2])
		push_timestamptz(&state, "previous_expires_at", d->previous_expires_at);
	if (!d->isnull[3])
	{
		v.type = jbvNumeric;
		v.val.numeric = DatumGetNumeric(DirectFunctionCall2(extract_interval,
															CStringGetTextDatum("epoch"),
															d->plan_pending));
		push_scalar(&state, "plan_seconds", &v);
	}
	if (!d->isnull[4])
		push_text(&state, "reason", d->reason);
	if (!d->isnull[5])
	{
		v.type = jbvBool;
		v.val.boolean = DatumGetBool(d->revived);
		push_scalar(&state, "revived", &v);
	}
	if (!d->isnull[6])
		push_text(&state, "public_key", d->public_key);
	if (!d->isnull[7])
		push_text(&state, "previous_public_key", d->previous_public_key);
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(result));
}

/* the columns of wgpeer.event, in order, as insert_event() fills them */
static const char *const event_columns[] = {
	"event_id", "at", "kind", "peer_id", "user_id", "interface", "detail"
};

#define EVENT_NATTS ((int) lengthof(event_columns))

/*
 * Whether insert_event() may write into rel directly: a plain table of
 * exactly the columns it fills, without anything an INSERT statement
 * would run besides the row and its index entries (a trigger, a rule,
 * row security, a CHECK constraint).  NOT NULL needs no check: a peer's
 * id, user and interface, the only columns taken from the peer, are NOT
 * NULL in wgpeer.peer.  A user who adds a trigger to the event table (to
 * forward events, say) gets the INSERT statement, and the trigger fires
 * as before.
 */
static bool
event_insertable_directly(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->trigdesc != NULL ||
		rel->rd_rules != NULL || rel->rd_rel->relrowsecurity ||
		(desc->constr != NULL && desc->constr->num_check > 0) ||
		desc->natts != EVENT_NATTS)
		return false;
	for (int i = 0; i < EVENT_NATTS; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || strcmp(NameStr(att->attname), event_columns[i]) != 0)
			return false;
	}
	return true;
}

/*
 * Insert one row of wgpeer.event as INSERT INTO wgpeer.event (kind,
 * peer_id, user_id, interface, detail) VALUES (...) does: the id from
 * wg_event_id(), the time from clock_timestamp(), the kind checked against
 * its domain, the privilege to insert checked, then the heap tuple and its
 * index entries.  Without the statement: planning aside, setting up the
 * executor for each event's INSERT was a quarter of the event log's cost
 * on a peer's creation.  Returns false, having written nothing, when the
 * table has what only an INSERT statement runs (see
 * event_insertable_directly()).
 */
static bool
insert_event(const char *kind, Datum *fields, bool *nulls)
{
	static void *kind_check = NULL;
	Relation	rel;
	TupleDesc	desc;
	Datum		values[EVENT_NATTS];
	bool		isnull[EVENT_NATTS];
	AclResult	acl;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;

	rel = table_open(event_relation(&event_table_oid, "event"), RowExclusiveLock);
	if (!event_insertable_directly(rel))
	{
		table_close(rel, NoLock);
		return false;
	}
	desc = RelationGetDescr(rel);
	acl = pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_INSERT);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_TABLE, RelationGetRelationName(rel));

	values[0] = Int64GetDatum(take_event_id());
	values[1] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[2] = CStringGetTextDatum(kind);
	domain_check(values[2], false, TupleDescAttr(desc, 2)->atttypid,
				 &kind_check, TopMemoryContext);
	memset(isnull, false, sizeof(isnull));
	for (int i = 0; i < 4; i++)
	{
		values[3 + i] = fields[i];
		isnull[3 + i] = nulls[i];
	}

	/* as an SPI statement in a trigger would, see what came before */
	CommandCounterIncrement();
	estate = CreateExecutorState();
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 0, NULL, 0);
	ExecOpenIndices(rri, false);
	slot = ExecInitExtraTupleSlot(estate, desc, &TTSOpsHeapTuple);
	ExecStoreHeapTuple(heap_form_tuple(desc, values, isnull), slot, true);
	simple_table_tuple_insert(rel, slot);
	list_free(wgpeer_insert_index_tuples(rri, slot, estate));
	ExecDropSingleTupleTableSlot(slot);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	/* the table's lock is held to the end of the transaction */
	table_close(rel, NoLock);
	return true;
}

/*
 * Write one event of the peer in row tuple: directly (insert_event()),
 * or with an INSERT statement when the table needs one.
 */
static void
write_event(const char *kind, HeapTuple tuple, TupleDesc desc, EventDetail *d)
{
	static SPIPlanPtr plan;
	Oid			types[5] = {TEXTOID, UUIDOID, TEXTOID, TEXTOID, JSONBOID};
	Datum		values[5];
	bool		nulls[4];
	char		spi_nulls[5] = {' ', ' ', ' ', ' ', ' '};

	values[0] = CStringGetTextDatum(kind);
	values[1] = peer_column(tuple, desc, "peer_id", &nulls[0]);
	values[2] = peer_column(tuple, desc, "user_id", &nulls[1]);
	values[3] = peer_column(tuple, desc, "interface", &nulls[2]);
	values[4] = event_detail(d);
	nulls[3] = false;
	if (insert_event(kind, values + 1, nulls))
		return;
	for (int i = 0; i < 4; i++)
		spi_nulls[1 + i] = nulls[i] ? 'n' : ' ';
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	wgpeer_exec(&plan,
				"INSERT INTO wgpeer.event (kind, peer_id, user_id, interface, detail)"
				" VALUES ($1, $2, $3, $4, $5)",
				5, types, values, spi_nulls);
	SPI_finish();
}

/*
 * Trigger on wgpeer.peer (AFTER INSERT, and AFTER UPDATE of the status,
 * the expiry or the key): write the events of the peer's transitions, in
 * the transaction that made them.  Enabled ALWAYS, so that a node's
 * outcome applied on the primary by replication (a peer activated or
 * expired there) is logged too; a node logs nothing itself.  A restored
 * peer (see restore.c) logs nothing: its events were restored with it.
 */
Datum
wg_peer_event(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	new;
	EventDetail d;
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("wg_peer_event() must be called as a row trigger on wgpeer.peer")));
	if (wgpeer_served_node()[0] != '\0')
		return PointerGetDatum(NULL);
	desc = trigdata->tg_relation->rd_att;
	new = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	/* a restored peer was created before: its events were restored too */
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) &&
		wgpeer_row_restored(new, desc, "created_at"))
		return PointerGetDatum(NULL);
	memset(&d, 0, sizeof(d));
	memset(d.isnull, true, sizeof(d.isnull));

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		Datum		address = peer_column(new, desc, "address", &isnull);

		d.address = DirectFunctionCall1(network_host, address);
		d.isnull[0] = false;
		d.expires_at = peer_column(new, desc, "expires_at", &d.isnull[1]);
		d.plan_pending = peer_column(new, desc, "plan_pending", &d.isnull[3]);
		write_event("created", new, desc, &d);
	}
	else
	{
		HeapTuple	old = trigdata->tg_trigtuple;
		char	   *old_status = TextDatumGetCString(peer_column(old, desc, "status", &isnull));
		char	   *new_status = TextDatumGetCString(peer_column(new, desc, "status", &isnull));
		const char *kind = NULL;

		if (strcmp(old_status, new_status) != 0)
		{
			kind = status_event(old_status, new_status);
			if (kind && strcmp(kind, "suspended") == 0)
				d.reason = peer_column(new, desc, "suspended_reason", &d.isnull[4]);
			if (kind && strcmp(kind, "renewed") == 0)
			{
				d.revived = BoolGetDatum(true);
				d.isnull[5] = false;
			}
		}
		else if (column_changed(old, new, desc, "expires_at"))
		{
			bool		no_plan_before;
			bool		no_plan_now;

			/* a pending plan that the first handshake started */
			(void) peer_column(old, desc, "plan_pending", &no_plan_before);
			(void) peer_column(new, desc, "plan_pending", &no_plan_now);
			kind = (!no_plan_before && no_plan_now) ? "plan_started" : "renewed";
		}
		if (kind && (strcmp(kind, "renewed") == 0 ||
					 strcmp(kind, "plan_started") == 0 ||
					 strcmp(kind, "expired") == 0))
		{
			d.expires_at = peer_column(new, desc, "expires_at", &d.isnull[1]);
			if (strcmp(kind, "expired") != 0)
				d.previous_expires_at = peer_column(old, desc, "expires_at",
													&d.isnull[2]);
		}
		if (kind)
			write_event(kind, new, desc, &d);
		if (column_changed(old, new, desc, "public_key"))
		{
			EventDetail k;

			memset(&k, 0, sizeof(k));
			memset(k.isnull, true, sizeof(k.isnull));
			k.public_key = peer_column(new, desc, "public_key", &k.isnull[6]);
			k.previous_public_key = peer_column(old, desc, "public_key", &k.isnull[7]);
			write_event("key_rotated", new, desc, &k);
		}
	}
	return PointerGetDatum(NULL);
}
