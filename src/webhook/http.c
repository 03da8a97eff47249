/*
 * http.c
 *		A webhook request: one signed POST of a JSON body, by libcurl.
 *
 * Headers (docs/webhooks.md): Content-Type application/json;
 * Wgpeer-Event-Id, the last event id of the batch, its idempotency key;
 * Wgpeer-Timestamp, Unix seconds; Wgpeer-Signature, "v1=" and the hex
 * HMAC-SHA256 of "<timestamp>.<body>" keyed with the endpoint's secret
 * (src/core/signature.c).
 *
 * Only http and https; certificates and host names always verified (a CA
 * file from wgpeer.webhook_ca_file, else the system's); redirects not
 * followed (a 3xx is a failure: the signed body must not go where the
 * administrator did not send it); the whole request bounded by
 * wgpeer.webhook_timeout.  A signal to stop (or the postmaster's death)
 * aborts a request in progress.
 */
#include "webhook/webhook.h"

#include <curl/curl.h>
#include <time.h>

#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "storage/pmsignal.h"

#include "core/signature.h"

/* how much of a failed response's body last_error keeps */
#define RESPONSE_EXCERPT 200

/*
 * Initialise libcurl, once per process, before any request (it is not
 * thread-safe to do later; the worker has one thread).
 */
void
wgpeer_http_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("the wgpeer webhook worker could not initialise libcurl")));
}

/*
 * Keep the start of a response's body (for last_error), drop the rest
 * (libcurl's write callback).
 */
static size_t
keep_excerpt(char *data, size_t size, size_t nmemb, void *arg)
{
	StringInfo	excerpt = (StringInfo) arg;
	size_t		n = size * nmemb;
	size_t		room = RESPONSE_EXCERPT - Min((size_t) excerpt->len, RESPONSE_EXCERPT);

	appendBinaryStringInfo(excerpt, data, Min(n, room));
	return n;
}

/*
 * Abort the transfer when the worker is told to stop (SIGTERM: die() sets
 * ProcDiePending) or the postmaster is gone (libcurl's progress callback,
 * called about once a second and on every chunk).  Other interrupts wait
 * for the request to end.
 */
static int
stop_requested(void *arg, curl_off_t dltotal, curl_off_t dlnow,
			   curl_off_t ultotal, curl_off_t ulnow)
{
	return (ProcDiePending || !PostmasterIsAlive()) ? 1 : 0;
}

/*
 * Text from the endpoint as printable ASCII (anything else becomes '?'), so
 * that last_error is valid text in any server encoding.
 */
static char *
printable(char *text)
{
	for (char *p = text; *p; p++)
		if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
			*p = '?';
	return text;
}

/*
 * What went wrong with a request libcurl could not complete, with what to
 * do about it where the administrator can act.
 */
static char *
transfer_error(CURLcode rc, const char *detail)
{
	const char *what = detail[0] ? detail : curl_easy_strerror(rc);

	switch (rc)
	{
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
			return psprintf("TLS: %s (the endpoint's certificate must verify "
							"against wgpeer.webhook_ca_file, or the system's "
							"CAs when it is empty)", what);
		case CURLE_OPERATION_TIMEDOUT:
			return psprintf("%s (wgpeer.webhook_timeout is %d ms)", what,
							wgpeer_webhook_timeout);
		default:
			return pstrdup(what);
	}
}

/*
 * POST body to url, signed with secret; true on a 2xx response.
 * Otherwise *error says what happened (a transfer error, or the status
 * and the start of the response), for webhook.last_error.
 */
bool
wgpeer_http_post(const char *url, const char *secret, int64 event_id,
				 const char *body, char **error)
{
	CURL	   *curl;
	struct curl_slist *headers = NULL;
	char		errbuf[CURL_ERROR_SIZE];
	char		timestamp[32];
	char		signature[WG_SIGNATURE_HEX_SIZE];
	StringInfoData excerpt;
	CURLcode	rc;
	long		status = 0;
	bool		ok = false;

	*error = NULL;
	snprintf(timestamp, sizeof(timestamp), "%lld", (long long) time(NULL));
	wg_webhook_signature(signature, secret, strlen(secret), timestamp, body,
						 strlen(body));
	if ((curl = curl_easy_init()) == NULL)
	{
		*error = pstrdup("libcurl could not start a request (out of memory?)");
		return false;
	}
	initStringInfo(&excerpt);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, "User-Agent: wgpeer/" WGPEER_VERSION);
	headers = curl_slist_append(headers,
								psprintf("Wgpeer-Event-Id: " INT64_FORMAT, event_id));
	headers = curl_slist_append(headers, psprintf("Wgpeer-Timestamp: %s", timestamp));
	headers = curl_slist_append(headers, psprintf("Wgpeer-Signature: v1=%s", signature));
	/* no "Expect: 100-continue" round trip for large bodies */
	headers = curl_slist_append(headers, "Expect:");
	errbuf[0] = '\0';

	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (wgpeer_webhook_ca_file && wgpeer_webhook_ca_file[0])
		curl_easy_setopt(curl, CURLOPT_CAINFO, wgpeer_webhook_ca_file);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) wgpeer_webhook_timeout);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(body));
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, keep_excerpt);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &excerpt);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, stop_requested);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);

	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
	{
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status < 300)
			ok = true;
		else if (status >= 300 && status < 400)
		{
			char	   *location = NULL;

			curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &location);
			*error = psprintf("HTTP %ld: redirects are not followed%s%s", status,
							  location ? "; it points to " : "",
							  location ? printable(pstrdup(location)) : "");
		}
		else
			*error = psprintf("HTTP %ld: %s", status, printable(excerpt.data));
	}
	else if (rc != CURLE_ABORTED_BY_CALLBACK)
		*error = transfer_error(rc, errbuf);
	else
		*error = pstrdup("the request was cut short: the worker was stopping");
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	pfree(excerpt.data);
	return ok;
}
