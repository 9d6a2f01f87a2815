// Package m365sim is a stateful Microsoft 365 simulator for tests, the
// demo, benchmarks and `maildesk serve --simulate`: the v2.0 identity
// endpoints that MSAL Go uses and the Graph v1.0 mail surface the bridge
// uses, served over TLS on loopback with a CA generated at start
// (CAPEM, CertPool, Client, Transport).
//
// It owns no product logic; it only has to behave like Microsoft. Sources:
// FACTS.md (../../shared/FACTS.md), the wire samples in
// ../../shared/graph-samples ("sample NN"), and the Graph and Entra docs
// those cite. Where the behaviour is unknown the strictest plausible one
// is chosen and listed under Assumptions. Drive it from Go (New, Start,
// AddUser, GenerateMailbox, DeliverMIME, SignIn, RevokeUser, InjectFaults,
// Sent, Stats ...) or run it alone with Main (`maildesk sim`).
//
// # Identity (authority = URL()/{tenant})
//
//   - GET {authority}/v2.0/.well-known/openid-configuration: the real
//     tenant document's keys (sample 70) with issuer {authority}/v2.0 and
//     endpoints on the simulator, so MSAL Go with WithInstanceDiscovery(false)
//     accepts it (FACTS.md "MSAL Go"). The tenant path segment may be the
//     tenant id, the domain, "organizations" or "common".
//   - GET {authority}/oauth2/v2.0/authorize (sample 72): checks client_id
//     (AADSTS700016) and redirect_uri (AADSTS50011, shown as an error page,
//     never redirected), needs response_type=code and PKCE with
//     code_challenge_method=S256; then shows a small HTML consent page
//     (user, app, scopes, Accept/Cancel). Accept redirects with code,
//     state and session_state (sample 73); Cancel with
//     error=access_denied and AADSTS65004 (sample 74). response_mode
//     query (default), fragment and form_post are honoured. SignIn and
//     SignInDeny play the browser. Options.AutoApprove skips the page for a
//     login_hint user who already consented. prompt=none redirects with a
//     code for such a user and with error=login_required (AADSTS50058)
//     otherwise.
//   - POST {authority}/oauth2/v2.0/token (samples 75, 76): client secret
//     (form or Basic; AADSTS7000215 on mismatch). authorization_code: code
//     single-use (replay: invalid_grant AADSTS54005), lives 10 minutes
//     (AADSTS70008), redirect_uri must equal the authorize one
//     (AADSTS500112), code_verifier required and checked by S256
//     (AADSTS501481). refresh_token: a new refresh token on every use;
//     revoked grant AADSTS50173 (RevokeUser), inactivity AADSTS700082
//     with suberror bad_token (ExpireRefreshTokens, or 90 days/TimeScale
//     unused), missing consent invalid_grant + suberror consent_required
//     AADSTS65001 (RequireConsent, or a scope never consented),
//     interaction_required AADSTS50079 (RequireMFA). Error JSON has error,
//     error_description ("AADSTSnnn: ...\r\nTrace ID ..."), error_codes,
//     timestamp, trace_id, correlation_id, error_uri and suberror when set,
//     HTTP 400 (401 for invalid_client) (samples 77-81). Success keys
//     token_type, scope, expires_in, ext_expires_in, access_token,
//     refresh_token, id_token, client_info (sample 75 variant).
//   - id_token: unsigned JWT ("alg":"none", dummy signature) whose
//     unpadded base64url payload carries ver, iss, sub, aud, exp, iat, nbf,
//     name, preferred_username, oid, tid, nonce (sample 84). client_info =
//     base64url({"uid": oid, "utid": tenant}) when the request has
//     client_info=1 (sample 85), so MSAL's home account id is oid.tenant.
//   - GET {authority}/v2.0/adminconsent (sample 82): records consent for
//     every user of the tenant and redirects with admin_consent=True,
//     tenant, scope, state; deny=1 gives error=access_denied (sample 83).
//   - Access tokens are opaque random strings bound to user, app and the
//     consented scopes; they live 3599 s / TimeScale (at least 2 s).
//     ExpireAccessTokens expires all of them; RevokeUser deletes the user's.
//
// # Graph v1.0 (base URL()/v1.0)
//
//   - Request bodies may be gzip-compressed (Content-Encoding: gzip): the
//     SDK's compression middleware sends them so.
//   - Every response carries request-id and client-request-id (echoed).
//     With Options.Logger at debug level each Graph request is logged
//     (method, path, status, duration; never tokens).
//     Errors use {"error":{"code","message","innerError":{"date",
//     "request-id","client-request-id"}}} (samples 56, 57).
//   - Authentication: missing, unknown, expired or revoked bearer → 401
//     InvalidAuthenticationToken with WWW-Authenticate (sample 57).
//     RevokeAccessTokens drops a user's access tokens (refresh still
//     works); RejectTokens answers the next n requests 401 whatever the
//     token; TokenGrants counts the token endpoint's grants.
//   - Permissions: own mailbox needs Mail.Read or Mail.ReadWrite to read,
//     Mail.ReadWrite to change, Mail.Send to send; another mailbox needs
//     the *.Shared scope AND an Exchange grant (AddSharedMailbox / Grant:
//     FullAccess to read or change, SendAs or SendOnBehalf to send)
//     (FACTS.md "Shared mailboxes"); otherwise 403 ErrorAccessDenied
//     (ErrorSendAsDenied for sending).
//   - /me and /users/{id|upn} (upn also path-escaped, anna%40contoso.com):
//     the default user property set of sample 90, $select honoured.
//   - mailFolders: list (direct children of the root, sorted by name,
//     $top default 10 with nextLink, sample 20), get by id or well-known
//     name (inbox, sentitems, drafts, deleteditems, archive, junkemail,
//     outbox, conversationhistory, msgfolderroot; case-insensitive),
//     counts totalItemCount, unreadItemCount and childFolderCount, POST
//     to create a folder; /mailFolders/{id}/childFolders lists (same
//     paging) and creates (POST) a folder's subfolders.
//     The OData key form mailFolders('id') is accepted everywhere.
//   - messages (per folder or across the mailbox): list with $select,
//     $top (default 10, at most 1000), $skip paging in @odata.nextLink,
//     $filter receivedDateTime ge|gt|le|lt and isRead eq, $orderby
//     receivedDateTime desc (default) or asc; get (sample 01's default
//     properties; internetMessageHeaders only when selected, sample 02;
//     Prefer outlook.body-content-type="text", sample 03); $expand=
//     attachments; PATCH isRead, flag {flagStatus} (notFlagged, flagged,
//     complete: Graph docs resources/followupflag.md), importance, and
//     subject of drafts;
//     DELETE moves to Deleted Items, or deletes for good from there;
//     POST /move {destinationId} answers 201 with the moved message.
//   - /messages/{id}/$value: the raw MIME, Content-Type text/plain
//     (sample 04). Delivered and sent MIME is returned byte for byte.
//   - attachments: list and get as fileAttachment with base64
//     contentBytes (sample 30), /$value raw bytes with the attachment's
//     Content-Type (sample 35), POST a small (≤ 3 MB) attachment to a
//     draft, createUploadSession (samples 46-49).
//   - Delta per folder: /messages/delta and /messages/delta() (the SDK
//     sends the latter, FACTS.md). Options $select, $filter
//     (receivedDateTime ge|gt only), $orderby (receivedDateTime desc
//     only), $expand=attachments, changeType=created and $top are set on
//     the first call and baked into the links; Prefer odata.maxpagesize is
//     honoured on every page. Pages end with @odata.nextLink
//     ($skiptoken) and the last with @odata.deltaLink ($deltatoken), both
//     opaque and in the mailFolders('id') form (samples 10-12). A round
//     snapshots the mailbox's change sequence, so changes made during a
//     round come in the next one. Next rounds return new items in full,
//     updated items as id + isRead + parentFolderId only, and removed or
//     moved-away items as {"id", "@removed":{"reason":"deleted"}}
//     (sample 13, FACTS.md "What a delta page can carry"). A deltaLink can
//     be replayed and gives the same answer. ExpireDeltaState (or the
//     delta410 fault) makes every outstanding link of the folder fail with
//     410 SyncStateNotFound (sample 16). Links carry a random epoch of the
//     simulator run that issued them: a restarted simulator (same seed,
//     same ids, but its state rebuilt) answers 410 SyncStateNotFound to the
//     links of an earlier run instead of taking them for its own.
//   - Immutable ids: with Prefer IdType="ImmutableId" ids are stable
//     across moves; without it the REST id changes on every move and the
//     old one gives 404 ErrorItemNotFound (FACTS.md, outlook-immutable-id).
//     Either id form is accepted on input. Preference-Applied echoes the
//     honoured preferences.
//   - sendMail (samples 40-43): JSON ({message, saveToSentItems}; the
//     string "false" is accepted as in sample 40) or base64 MIME with
//     Content-Type text/plain (line breaks allowed); 202, no body. Bad
//     base64 → 400 ErrorMimeContentInvalidBase64String without innerError
//     (sample 43). No recipients → 400 ErrorInvalidRecipients. A From
//     other than the mailbox → 403 ErrorSendAsDenied. The Sent Items copy
//     keeps the MIME's Message-ID byte for byte (one is added only when
//     missing). Recipients that have a mailbox in the simulator get a copy
//     in their inbox. Sent returns what was sent (raw MIME + headers).
//   - Drafts: POST /messages (JSON or base64 MIME) → 201 in Drafts with
//     isDraft, an internetMessageId, and the body wrapped in an html
//     document (sample 44); POST /messages/{id}/send → 202, the message
//     moves to Sent Items keeping its immutable id (sample 45). A MIME
//     draft keeps Message-ID, In-Reply-To, References and its custom
//     headers (X-*, Auto-Submitted ...) when it is sent.
//     POST /messages/{id}/permanentDelete → 204, the message is gone (not
//     in Deleted Items; sample 94).
//   - $search on /messages and /mailFolders/{id}/messages (sample 93,
//     search.go): a double-quoted KQL string (bare words in from, subject,
//     body; from:, to:, cc:, bcc:, participants:, recipients:, subject:,
//     body:, attachment:; OR between terms), word-prefix matching, sorted
//     by sent date newest first, at most 1,000 results, pages by
//     @odata.nextLink ($skiptoken); with $filter, $orderby or $skip → 400
//     ErrorInvalidUrlQuery; unquoted → 400.
//   - Upload sessions: createUploadSession on a draft ({AttachmentItem:
//     {attachmentType, name, size}}, ≤ 150 MB) → 201 uploadSession with an
//     opaque uploadUrl on the simulator, expirationDateTime,
//     nextExpectedRanges ["0-"]. PUTs need Content-Range "bytes s-e/total",
//     must be sequential (416 invalidRange on a gap or overlap, sample 56)
//     and at most 4 MiB (413); intermediate 200 {ExpirationDateTime,
//     nextExpectedRanges:["next"]}; final 201 with Location
//     .../attachments('id') and Content-Length 0; DELETE cancels (204).
//   - $batch (samples 50-52): 1-20 requests (more → 400), unique ids,
//     relative urls; the envelope is 200; each inner request is
//     authenticated, counted, throttled and fault-injected on its own
//     (Stats.BatchInner); dependsOn on a failed request gives 424;
//     JSON inner bodies are embedded, others base64.
//   - Subscriptions (samples 60-67): POST /subscriptions for
//     me|users/{id} /messages or /mailFolders/{id}/messages of the
//     signed-in user only (a shared mailbox → 403, FACTS.md); changeType
//     created|updated|deleted; expirationDateTime in the future and at
//     most 4,230 minutes ahead (else 400); clientState ≤ 128 chars;
//     validation handshake POST {url}?validationToken=... (text/plain)
//     to notificationUrl and lifecycleNotificationUrl, which must answer
//     200 with the token within 10 s (else 400 ValidationError); 201 with
//     the subscription. Changes (deliveries, sends, moves, read flags,
//     deletes) post {value:[{subscriptionId, subscriptionExpirationDateTime,
//     clientState, changeType, resource, tenantId, resourceData}]}
//     (sample 63, PascalCase resource) in the background; ids are
//     immutable when the subscription was created with the Prefer header.
//     SendLifecycle posts reauthorizationRequired, subscriptionRemoved
//     (which also deletes the subscription) or missed (samples 64-66).
//     PATCH expirationDateTime renews (200, whole object); DELETE → 204;
//     POST /subscriptions/{id}/reauthorize → 204.
//   - Throttling (Options.Throttle; FACTS.md "throttling", sample 55):
//     per app and mailbox, at most 10,000 requests in a sliding 10-minute
//     window (60 buckets) and 4 in flight. Over the window → 429
//     TooManyRequests (documented body) with Retry-After until the oldest
//     bucket frees; a fifth concurrent request → 429 ApplicationThrottled
//     "Application is over its MailboxConcurrency limit." (sample 55
//     variant) with Retry-After 1 s. Throttled requests count. Other
//     mailboxes are unaffected. Over all mailboxes an app may make 2,000
//     requests per second (more → 429 TooManyRequests, Retry-After 1 s).
//     Durations are divided by TimeScale. The upload limit (150 MB per
//     5 minutes) is not enforced.
//   - Latency (Options.Latency / TimeScale) is spent while holding the
//     concurrency slot, so it shapes concurrency as real latency does.
//   - Faults (InjectFaults): with probability Rate a Graph request gets
//     503 ServiceUnavailable + Retry-After, a closed connection (inside a
//     batch: 503), a 429 burst over the next BurstLen requests of the
//     mailbox, or (delta requests only) 410 SyncStateNotFound or a page
//     cut to a third of its size (FACTS.md: pages can be shorter).
//   - No offline_access in the granted scopes, no refresh_token; the scope
//     ".default" stands for the app's permissions (Mail.ReadWrite,
//     Mail.Send, User.Read and the .Shared ones).
//
// # Seeding
//
// GenerateMailbox(upn, n, GenOptions) adds n messages deterministically
// from Options.Seed and the upn: threads of 1-6 messages linked by
// In-Reply-To and References, alternating between the inbox and Sent Items
// (about 20 % written by the owner), HTML and plain bodies, non-ASCII names
// and subjects (RFC 2047 encoded words), inline images (cid), attachments
// on about 30 % of messages from 1 byte to MaxAttachment (default 30 MB;
// 1 % above 5 MB), calendar invites (text/calendar; method=REQUEST), and,
// only when Options.SamplesDir names a directory of *.raw files (tests
// point it at enmime's testdata/mail; read at run time, never copied),
// every 25th message a real-world MIME sample. By default there are no
// samples, so a seed gives the same mailboxes (ids, counts, MIME) wherever
// the process runs; `maildesk sim`, `serve --simulate` and `maildesk demo`
// never set it. Generated messages
// keep only their fields; MIME and attachment bytes are produced on demand
// (about 2.4 KB of heap per message measured for 20,000 messages). Seed
// (used by Main) adds n users and a shared mailbox support@ that all of
// them may use.
//
// # Assumptions (Graph's behaviour unknown or undocumented)
//
//   - Delta page cap 200 with Prefer odata.maxpagesize (Graph documents
//     none for messages; Microsoft staff state 200 for other delta
//     resources); default 10. Pages are full except the last; real pages
//     can be shorter, so clients must not rely on it.
//   - Updated items in a delta round carry only id, isRead and
//     parentFolderId whatever $select says (FACTS.md's strictest reading;
//     sample 13 shows them whole). A move shows as @removed in the source
//     folder and as a new item in the destination.
//   - The 5,000-message cap of a delta $filter is not enforced. Delta
//     tokens do not expire by age; only ExpireDeltaState and faults
//     expire them. Prefer IdType is per request, not baked into links.
//   - A delta of /me/messages (not per folder) is refused with 400.
//   - Graph's 4 MB request-body limit is enforced on sendMail and draft
//     creation (413 RequestEntityTooLarge); bigger attachments go through
//     upload sessions.
//   - Upload URLs ignore an Authorization header (kiota would add one since
//     the simulator shares Graph's host). Uploads are not throttled.
//   - $batch runs up to 4 of its requests at once, as Outlook does
//     (requests with dependsOn wait for their prerequisites); each takes a
//     concurrency slot of its mailbox; the envelope itself is not counted.
//   - 429 for the concurrency limit uses code ApplicationThrottled with no
//     innerError (as captured); Retry-After is 1 s / TimeScale.
//   - Old refresh tokens stay valid after rotation (as Entra ID does);
//     PKCE is required for every authorization code (Entra ID requires it
//     only for public clients).
//   - Notification receivers may be https with any certificate or http on
//     loopback (Graph requires https with a public certificate); there is
//     no retry of failed notifications (Graph retries up to 4 hours).
//   - internetMessageHeaders lists the MIME headers with encoded words
//     kept as in the MIME.
//   - /users/{id} for another user is readable with any valid token.
//   - Response Content-Type is application/json;odata.metadata=minimal;
//     odata.streaming=true;IEEE754Compatible=false;charset=utf-8 (batch
//     sample 50); errors use plain application/json.
//   - Message DELETE moves to Deleted Items; from there it deletes for good.
package m365sim
