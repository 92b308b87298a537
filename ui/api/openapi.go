package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/service"
	"github.com/takedown/takedown/workflows"
)

type obj = map[string]any

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

func str(desc string) obj { return obj{"type": "string", "description": desc} }

func arr(items obj) obj { return obj{"type": "array", "items": items} }

// line and text are strings bounded as the door bounds them (measure.CheckLine, CheckText):
// UTF-8 bytes, no control characters (text allows tab and line breaks).
func line(desc string) obj { return bounded(desc, measure.MaxLine, "one line") }

func text(desc string) obj { return bounded(desc, measure.MaxText, "tab and line breaks allowed") }

func bounded(desc string, max int, kind string) obj {
	d := fmt.Sprintf("at most %d bytes of UTF-8, no control characters (%s)", max, kind)
	if desc != "" {
		d = desc + "; " + d
	}
	return obj{"type": "string", "maxLength": max, "x-max-bytes": max, "description": d}
}

func list(items obj, max int) obj { return obj{"type": "array", "items": items, "maxItems": max} }

// openAPIDoc describes the API. It is built from the same tables the handlers use (operations,
// stages), so the document cannot drift from the code on what actions exist.
func openAPIDoc() obj {
	errResp := func(desc string) obj {
		return obj{"description": desc, "content": obj{"application/json": obj{"schema": obj{"type": "object", "properties": obj{"error": ref("Error")}}}}}
	}
	jsonBody := func(schema obj) obj {
		return obj{"required": true, "content": obj{"application/json": obj{"schema": schema}}}
	}
	ok := func(desc string, schema obj) obj {
		return obj{"description": desc, "content": obj{"application/json": obj{"schema": schema}}}
	}
	common := obj{"400": errResp("bad input; `field` is the JSON path"), "401": errResp("no or unknown token"),
		"403": errResp("refused; `rule` names the rule"), "404": errResp("not found"),
		"409": errResp("wrong stage, a lost race, or an Idempotency-Key used for another request"),
		"504": errResp("no answer before the request's deadline; the action may still take effect")}
	with := func(op obj, codes obj) obj {
		resp := obj{}
		for k, v := range common {
			resp[k] = v
		}
		for k, v := range codes {
			resp[k] = v
		}
		op["responses"] = resp
		return op
	}
	paths := obj{
		"/api/v1/tokens": obj{"post": obj{"summary": "Exchange a username and password for an API token", "security": []any{},
			"requestBody": jsonBody(obj{"type": "object", "required": []string{"username", "password"}, "properties": obj{"username": str(""), "password": str("")}}),
			"responses": obj{"201": ok("token", obj{"type": "object", "properties": obj{"token": str("send as Authorization: Bearer <token>"),
				"id": str("the token's ID, to list or revoke it"), "expires_at": obj{"type": "string", "format": "date-time"}}}),
				"401": errResp("wrong username or password (audited)"),
				"429": errResp(fmt.Sprintf("the account (%d failures since its last login, within %s) or the address (%d) failed too often: locked from the latest failure for %s, doubled for each further failure, at most %s; tries while locked do not count; Retry-After says when",
					service.LoginFailuresPerAccount, service.LoginMemory, service.LoginFailuresPerAddress, service.LoginLockBase, service.LoginLockMax))}},
			"get": with(obj{"summary": "The caller's live tokens"}, obj{"200": ok("tokens", obj{"type": "object"})})},
		"/api/v1/tokens/{id}": obj{"delete": with(obj{"summary": "Revoke one of the caller's tokens; `current` is the one in use (logout)",
			"parameters": []any{pathParam("id")}}, obj{"204": obj{"description": "revoked"}})},
		"/api/v1/me": obj{"get": with(obj{"summary": "The authenticated principal"}, obj{"200": ok("actor", ref("Actor"))})},
		"/api/v1/cases": obj{
			"post": with(obj{"summary": "Open a case (officer)", "requestBody": jsonBody(ref("CaseInput"))}, obj{"201": ok("case", ref("Case"))}),
			"get": with(obj{"summary": "List the cases the reader may read (need-to-know), newest first", "parameters": []any{
				obj{"name": "limit", "in": "query", "schema": obj{"type": "integer", "minimum": 1, "maximum": service.MaxPage, "default": 50}},
				obj{"name": "offset", "in": "query", "schema": obj{"type": "integer", "minimum": 0, "default": 0}}}},
				obj{"200": ok("cases", arr(ref("Case")))}),
		},
		"/api/v1/cases/{case}": obj{"get": with(obj{"summary": "One case", "parameters": []any{pathParam("case")}}, obj{"200": ok("case", ref("Case"))})},
		"/api/v1/cases/{case}/measures": obj{"post": with(obj{"summary": "Open a draft measure request in a case (officer); starts its workflow",
			"parameters": []any{pathParam("case")}, "requestBody": jsonBody(obj{"type": "object", "properties": obj{"plan": ref("Plan")}})}, obj{"201": ok("measure", ref("Measure"))})},
		"/api/v1/measures": obj{"get": with(obj{"summary": "List the measures the reader may read (need-to-know), most recently changed first", "parameters": []any{
			obj{"name": "stage", "in": "query", "schema": obj{"type": "string"}}, obj{"name": "case", "in": "query", "schema": obj{"type": "string"}},
			obj{"name": "org", "in": "query", "description": "the requesting agency (organisation ID)", "schema": obj{"type": "string"}},
			obj{"name": "requester", "in": "query", "description": "user ID or username", "schema": obj{"type": "string"}},
			obj{"name": "target", "in": "query", "description": "a target value of the current version starts with this", "schema": obj{"type": "string"}},
			obj{"name": "country", "in": "query", "description": "a target of the current version is in this country (ISO 3166 alpha-2)", "schema": obj{"type": "string"}},
			obj{"name": "emergency", "in": "query", "description": "taken on the emergency path (true) or not (false)", "schema": obj{"type": "boolean"}},
			obj{"name": "from", "in": "query", "description": "opened on or after: a date (JST) or an RFC 3339 time", "schema": obj{"type": "string"}},
			obj{"name": "to", "in": "query", "description": "opened on or before this date (JST), or before this RFC 3339 time", "schema": obj{"type": "string"}},
			obj{"name": "limit", "in": "query", "schema": obj{"type": "integer", "minimum": 1, "maximum": service.MaxPage, "default": 50}},
			obj{"name": "offset", "in": "query", "schema": obj{"type": "integer", "minimum": 0, "default": 0}}}},
			obj{"200": ok("measures", obj{"type": "object", "properties": obj{"measures": arr(obj{"type": "object"})}})})},
		"/api/v1/measures/{measure}": obj{"get": with(obj{"summary": "A measure request's state", "parameters": []any{pathParam("measure")}}, obj{"200": ok("measure", ref("Measure"))})},
		"/api/v1/measures/{measure}/plan": obj{"put": with(obj{"summary": "Replace the draft's plan (requester, DRAFT only)",
			"parameters": []any{pathParam("measure")}, "requestBody": jsonBody(ref("Plan"))}, obj{"200": ok("measure", ref("Measure"))})},
		"/api/v1/measures/{measure}/targets": obj{
			"post": with(obj{"summary": "Append targets to the draft (requester, DRAFT only)", "parameters": []any{pathParam("measure")},
				"requestBody": jsonBody(obj{"type": "object", "properties": obj{"targets": arr(ref("Target"))}})}, obj{"200": ok("measure", ref("Measure")), "413": errResp("body over 64 MiB")}),
			"get": with(obj{"summary": "Targets of the current (or ?version=) version: all of them, or with q (value contains, any case), offset or limit a page and the matching total",
				"parameters": []any{pathParam("measure"), obj{"name": "version", "in": "query", "schema": obj{"type": "integer"}},
					obj{"name": "q", "in": "query", "schema": obj{"type": "string", "maxLength": measure.MaxTargetValue}},
					obj{"name": "limit", "in": "query", "schema": obj{"type": "integer", "minimum": 1, "maximum": service.MaxPage}},
					obj{"name": "offset", "in": "query", "schema": obj{"type": "integer", "minimum": 0}}}},
				obj{"200": ok("targets", obj{"type": "object", "properties": obj{"targets": arr(ref("Target")), "total": obj{"type": "integer"}}})}),
		},
		"/api/v1/measures/{measure}/targets/remove": obj{"post": with(obj{"summary": "Remove targets from the draft by their values (requester, DRAFT only); a value the draft does not hold is refused and nothing is removed",
			"parameters": []any{pathParam("measure")}, "requestBody": jsonBody(obj{"type": "object", "properties": obj{"values": list(bounded("a target's value", measure.MaxTargetValue, "one line"), service.MaxRemove)}})},
			obj{"200": ok("measure", ref("Measure"))})},
		"/api/v1/measures/{measure}/imports": obj{"post": with(obj{"summary": "Upload a STIX 2.1 bundle or a MISP event (raw JSON body) to import into the draft: answers its preview (the targets it would add, each with the STIX id or MISP UUID it came from; the attribution it states; everything skipped, with why); nothing is added until the preview is confirmed",
			"parameters": []any{pathParam("measure"), obj{"name": "format", "in": "query", "schema": obj{"type": "string", "enum": []string{"stix", "misp"}}, "description": "left out: detected"},
				obj{"name": "name", "in": "query", "schema": bounded("the file's name", measure.MaxLine, "one line")}},
			"requestBody": obj{"required": true, "content": obj{"application/json": obj{"schema": obj{"type": "object"}}}}},
			obj{"201": ok("the preview", ref("ImportPreview")), "413": errResp("file over 128 MiB")})},
		"/api/v1/measures/{measure}/stix": obj{"get": with(obj{"summary": "A closed measure as a STIX 2.1 bundle for partners (officers and commanders of its agency): the targets as indicators of infrastructure, the case's imported attribution, the course of action, the report; every object under one TLP marking",
			"parameters": []any{pathParam("measure"), obj{"name": "tlp", "in": "query", "schema": obj{"type": "string", "enum": []string{"clear", "white", "green", "amber", "red"}, "default": "amber"}}}},
			obj{"200": obj{"description": "the bundle", "content": obj{"application/stix+json;version=2.1": obj{"schema": obj{"type": "object"}}}}})},
		"/api/v1/audit/stream": obj{"get": with(obj{"summary": "The signed log's records as JSON lines ({\"index\": N, \"record\": {…}}) from ?from= on, for a SIEM (auditors; the read is audited); ?follow=1 keeps the answer open and sends records as they are signed until the request's deadline: ask again from the index after the last line",
			"parameters": []any{obj{"name": "from", "in": "query", "schema": obj{"type": "integer", "minimum": 0, "default": 0}}, obj{"name": "follow", "in": "query", "schema": obj{"type": "string", "enum": []string{"0", "1"}}}}},
			obj{"200": obj{"description": "JSON lines", "content": obj{"application/x-ndjson": obj{}}}})},
		"/api/v1/me/notifications": obj{
			"get": with(obj{"summary": "Your notification choices and the notifications planned for you, newest first (sent_at once sent)"},
				obj{"200": ok("choices and notifications", obj{"type": "object"})}),
			"put": with(obj{"summary": "Choose what you are told and where: kinds (waiting, reminder, overdue, escalation), an e-mail address, a webhook URL; a new webhook URL is answered with its Standard Webhooks secret (webhook_secret), once",
				"requestBody": jsonBody(obj{"type": "object", "properties": obj{"email": line("one address"), "webhook_url": str("http or https URL"),
					"kinds": arr(obj{"type": "string", "enum": service.NoticeKinds})}})},
				obj{"200": ok("the choices", obj{"type": "object"})})},
		"/api/v1/imports/{id}": obj{"get": with(obj{"summary": "An import's preview, recomputed against the draft as it stands (offset and limit page its targets)",
			"parameters": []any{pathParam("id"), obj{"name": "limit", "in": "query", "schema": obj{"type": "integer", "minimum": 1, "maximum": service.MaxPage}},
				obj{"name": "offset", "in": "query", "schema": obj{"type": "integer", "minimum": 0}}}}, obj{"200": ok("the preview", ref("ImportPreview"))})},
		"/api/v1/imports/{id}/confirm": obj{"post": with(obj{"summary": "Add what the preview lists to the draft, in one transaction: targets_sha256 must be the preview's, else 409 (the draft or the case changed since)",
			"parameters": []any{pathParam("id")}, "requestBody": jsonBody(obj{"type": "object", "required": []string{"targets_sha256"}, "properties": obj{"targets_sha256": str("the preview's targets_sha256")}})},
			obj{"200": ok("measure", ref("Measure"))})},
		"/api/v1/measures/{measure}/evidence": obj{
			"post": with(obj{"summary": "Attach an evidence file (raw body; metadata in the query: filename, kind, provenance, legal_basis, acquirer, tool, acquired_at, tlp)",
				"parameters": []any{pathParam("measure")}, "requestBody": obj{"required": true, "content": obj{"application/octet-stream": obj{"schema": obj{"type": "string", "format": "binary"}}}}},
				obj{"201": ok("evidence", ref("Evidence")), "413": errResp("file over the configured limit")}),
			"get": with(obj{"summary": "Evidence of the current version", "parameters": []any{pathParam("measure")}}, obj{"200": ok("evidence", obj{"type": "object"})}),
		},
		"/api/v1/evidence/{sha256}": obj{"get": with(obj{"summary": "Download evidence (audited as a custody event)", "parameters": []any{pathParam("sha256")}},
			obj{"200": obj{"description": "the file", "content": obj{"application/octet-stream": obj{}}}})},
		"/api/v1/measures/{measure}/history": obj{"get": with(obj{"summary": "The measure's audit entries, in order", "parameters": []any{pathParam("measure")}},
			obj{"200": ok("entries", obj{"type": "object", "properties": obj{"entries": arr(ref("AuditRecord"))}, "description": "each record with its log_index (null while pending: not yet under a signed checkpoint)"})})},
		"/api/v1/measures/{measure}/history/{index}": obj{"get": with(obj{"summary": "One of the measure's log entries with its inclusion proof (c2sp tlog-proof) against the newest checkpoint, checked by the server",
			"parameters": []any{pathParam("measure"), pathParam("index")}}, obj{"200": ok("the entry, proof and check", obj{"type": "object"})})},
		"/api/v1/measures/{measure}/changes": obj{"get": with(obj{"summary": "What changed from an earlier sealed version (from; by default the version the body deciding now returned, else the previous one): plan fields on canonical values, targets and evidence added and removed (the first 100 targets of each side, with counts); null with one version",
			"parameters": []any{pathParam("measure"), obj{"name": "from", "in": "query", "schema": obj{"type": "integer", "minimum": 1}}}}, obj{"200": ok("changes", obj{"type": "object"})})},
		"/api/v1/measures/{measure}/decisions": obj{"get": with(obj{"summary": "Reviews, votes, conflict declarations and gates, each with the version (and, for votes, the digest) it was given on",
			"parameters": []any{pathParam("measure")}}, obj{"200": ok("decisions", obj{"type": "object"})})},
	}
	paths["/api/v1/work"] = obj{"get": with(obj{"summary": "What waits on the reader (My work): measures they may act on now, oldest first in their stage, each with the operations open to them, since when it waits, its deadline and whether it is overdue; and the counts by stage of what they may read"},
		obj{"200": ok("work", obj{"type": "object"})})}
	paths["/api/v1/statistics"] = obj{"get": with(obj{"summary": "A year's figures (JST) by quarter for the annual report to the Diet: requests, approvals, rejections, returns, emergencies, post-hoc findings, targets abroad, and median and p90 time in each stage; over the measures the reader may read. A calendar year, or with basis=fiscal a fiscal year (年度: year=2026 is 1 April 2026 to 31 March 2027, Q1 April to June)",
		"parameters": []any{obj{"name": "year", "in": "query", "description": "the calendar or fiscal year; the one now falls in (JST) when absent", "schema": obj{"type": "integer", "minimum": 2000, "maximum": 9998}},
			obj{"name": "basis", "in": "query", "schema": obj{"type": "string", "enum": []string{"calendar", "fiscal"}, "default": "calendar"}}}}, obj{"200": ok("statistics", obj{"type": "object"})})}
	paths["/api/v1/admin/users"] = obj{"get": with(obj{"summary": "Every account with its organisation, roles, sign-in kind and retirement (administrators, auditors; an auditor's read is audited)",
		"parameters": []any{obj{"name": "limit", "in": "query", "schema": obj{"type": "integer", "minimum": 1, "maximum": service.MaxPage, "default": 50}},
			obj{"name": "offset", "in": "query", "schema": obj{"type": "integer", "minimum": 0}}}}, obj{"200": ok("users", obj{"type": "object"})})}
	paths["/api/v1/admin/role-changes"] = obj{"get": with(obj{"summary": "Account changes waiting for a second administrator, oldest first"},
		obj{"200": ok("changes", obj{"type": "object"})}),
		"post": with(obj{"summary": "Propose an account change (administrator): an organisation or user created, a user retired, a role granted or revoked, a designation; applies when another administrator approves",
			"requestBody": jsonBody(obj{"type": "object", "required": []string{"kind", "reason"}, "properties": obj{
				"kind": obj{"type": "string", "enum": service.Kinds},
				"user": str("user ID (not for create_org, create_user)"), "role": str("grant_role, revoke_role; create_user: a first role"),
				"account": obj{"type": "object", "description": "create_org: org_id, org_name, org_kind (agency | commission); create_user: org_id, username, display_name",
					"properties": obj{"org_id": str(""), "org_name": line(""), "org_kind": str(""), "username": str(""), "display_name": line("")}},
				"scope":      obj{"type": "string", "enum": []string{"npa", "prefectural"}},
				"valid_from": obj{"type": "string", "format": "date-time"}, "valid_until": obj{"type": "string", "format": "date-time"},
				"designation": str("designation ID, for revoke_designation"), "reason": str("")}})}, obj{"201": ok("the proposal", obj{"type": "object"})})}
	paths["/auth/oidc/login"] = obj{"get": obj{"summary": "Single sign-on: redirect to the OpenID Connect provider (when -oidc-issuer is set). With cli, key and state (takedown login -sso), the callback sends the browser to cli with the token sealed to key (HPKE: DHKEM(X25519), HKDF-SHA256, AES-256-GCM; info \"takedown cli sign-on v1\\0\" + state) as sealed, or with error", "security": []any{},
		"parameters": []any{
			obj{"name": "cli", "in": "query", "description": "the command's loopback listener: http://127.0.0.1:PORT/PATH or http://[::1]:PORT/PATH", "schema": obj{"type": "string"}},
			obj{"name": "key", "in": "query", "description": "an X25519 public key, unpadded base64url", "schema": obj{"type": "string"}},
			obj{"name": "state", "in": "query", "description": "16 to 64 letters, digits, - or _; returned with the answer", "schema": obj{"type": "string"}}},
		"responses": obj{"302": obj{"description": "to the provider"}, "400": errResp("a cli, key or state of the wrong shape"), "404": errResp("single sign-on is not configured")}}}
	paths["/auth/oidc/cli-key"] = obj{"get": obj{"summary": "Single sign-on from the command line: the Ed25519 public key that signs the callback's answer to takedown login -sso (parameter sig, over the state, the key, sealed and error)", "security": []any{},
		"responses": obj{"200": ok("the key, unpadded base64url", obj{"type": "object"}), "404": errResp("single sign-on is not configured")}}}
	paths["/api/v1/codec/decode"] = obj{"post": obj{"summary": "Temporal's remote codec (decoding only): opens sealed payloads for an auditor, as temporal workflow show --codec-endpoint and Temporal's UI ask; each use logged, refusals audited",
		"requestBody": obj{"required": true, "content": obj{"application/json": obj{"schema": obj{"type": "object", "description": "{\"payloads\": [Temporal payloads in proto JSON]}"}}}},
		"responses":   obj{"200": ok("the payloads opened", obj{"type": "object"}), "401": errResp("no token"), "403": errResp("not an auditor (audited)")}}}
	paths["/auth/oidc/callback"] = obj{"get": obj{"summary": "Single sign-on: the provider's redirect back; answers an API token for the account created beforehand by two administrators", "security": []any{},
		"parameters": []any{obj{"name": "code", "in": "query", "schema": obj{"type": "string"}}, obj{"name": "state", "in": "query", "schema": obj{"type": "string"}}},
		"responses":  obj{"201": ok("token", obj{"type": "object"}), "401": errResp("no account, a refused or unverifiable sign-on (audited as a failed login)")}}}
	paths["/api/v1/enrol"] = obj{"post": obj{"summary": "Set a new local user's password with the one-time enrolment code an administrator passed on", "security": []any{},
		"requestBody": jsonBody(obj{"type": "object", "required": []string{"username", "code", "password"}, "properties": obj{
			"username": str(""), "code": str("enrol_…"), "password": obj{"type": "string", "minLength": service.MinPassword, "x-max-bytes": service.MaxPassword}}}),
		"responses": obj{"204": obj{"description": "enrolled: log in with POST /api/v1/tokens"},
			"401": errResp("wrong, used or expired code (counted as a failed login)")}}}
	paths["/api/v1/admin/policy"] = obj{
		"get": with(obj{"summary": "The role policy in force: version and rules"}, obj{"200": ok("policy", obj{"type": "object"})}),
		"post": with(obj{"summary": "Propose the next policy version (administrator)", "requestBody": jsonBody(obj{"type": "object", "properties": obj{
			"rules": arr(obj{"type": "object", "properties": obj{"role": str(""), "op": str("operation or *"), "effect": obj{"type": "string", "enum": []string{"allow", "deny", "sign"},
				"description": "sign: the role (or * for every role) must sign this decision personally"}}}),
			"reason": str("")}})}, obj{"201": ok("the proposed version", obj{"type": "object"})}),
	}
	signature := obj{"type": "object", "required": []string{"kind", "key", "time"}, "properties": obj{
		"kind": obj{"type": "string", "enum": []string{"webauthn", "ssh"}}, "key": str("the registered key's ID"),
		"time":               str("the statement's time, RFC 3339 in UTC to the second, within 5 minutes of the server's clock"),
		"authenticator_data": str("webauthn: base64url"), "client_data_json": str("webauthn: base64url"), "signature": str("webauthn: base64url"),
		"sshsig": str("ssh: the armored SSHSIG (ssh-keygen -Y sign -n takedown-decision) over the statement's canonical JSON")},
		"description": "the person's own signature over the decision's statement (POST …/statements/{op}); required where the policy in force has a sign rule for the operation and the person's role"}
	paths["/api/v1/measures/{measure}/statements/{op}"] = obj{"post": with(obj{"summary": "The statement a decision makes, to sign before sending it: canonical JSON (what an SSH key signs), its SHA-256 (a passkey's challenge), its time and words",
		"parameters": []any{pathParam("measure"), pathParam("op")}, "requestBody": jsonBody(ref("Action"))},
		obj{"200": ok("statement", obj{"type": "object", "properties": obj{"statement": str("canonical JSON"), "sha256": str("hex"), "challenge": str("base64url"), "time": str("RFC 3339"), "words": str("")}})})}
	key := obj{"type": "object", "properties": obj{"id": str(""), "user": str(""), "kind": str("webauthn | ssh"), "public_key": str(""), "label": str(""),
		"state": obj{"type": "string", "enum": []string{"pending", "active", "revoke_pending", "revoked"}}}}
	paths["/api/v1/keys"] = obj{
		"get": with(obj{"summary": "Your signing keys; administrators: ?user=ID for anyone's, ?user= (empty) for those waiting",
			"parameters": []any{obj{"name": "user", "in": "query", "schema": obj{"type": "string"}}}}, obj{"200": ok("keys", obj{"type": "object", "properties": obj{"keys": arr(key)}})}),
		"post": with(obj{"summary": "Propose an SSH key of yours for signing decisions, with its proof (a signature over {person, op: register_key, digest: the key's ID, time}); passkeys are registered on the web page",
			"requestBody": jsonBody(obj{"type": "object", "required": []string{"kind", "public_key", "proof"}, "properties": obj{
				"kind": obj{"type": "string", "enum": []string{"ssh"}}, "public_key": str("an authorized_keys line"), "label": bounded("", 64, "one line"),
				"proof": obj{"type": "object", "required": []string{"kind", "key", "time", "sshsig"}, "description": "required: the key's SSHSIG (namespace takedown-decision) over the canonical JSON of {format, op: register_key, digest: the key's ID, person: your user ID, time}",
					"properties": obj{"kind": str("ssh"), "key": str("the key's ID (optional: the server computes it)"), "time": str("RFC 3339 in UTC to the second, within 5 minutes of the server's clock"), "sshsig": str("armored SSHSIG")}}}})},
			obj{"201": ok("the key, waiting for an administrator other than you", key)}),
	}
	// An approval's body is optional: the approving administrator's signature, where the policy
	// has a sign rule for approve_key, approve_policy or approve_role_change.
	approval := obj{"content": obj{"application/json": obj{"schema": obj{"type": "object", "properties": obj{"signature": signature}}}},
		"description": "optional: {\"signature\": …} over the approval's statement (POST …/statement)"}
	statementOf := func(summary string, param string) obj {
		return obj{"post": with(obj{"summary": summary, "parameters": []any{pathParam(param)}},
			obj{"200": ok("statement", obj{"type": "object", "properties": obj{"statement": str("canonical JSON"), "sha256": str("hex"), "challenge": str("base64url"), "time": str("RFC 3339"), "words": str("")}})})}
	}
	paths["/api/v1/admin/role-changes/{id}/approve"] = obj{"post": with(obj{"summary": "Approve and apply an account change (another administrator); for create_user the answer carries the new user's one-time enrolment_code",
		"parameters": []any{pathParam("id")}, "requestBody": approval}, obj{"200": ok("the applied change", obj{"type": "object"})})}
	paths["/api/v1/admin/role-changes/{id}/statement"] = statementOf("The statement approving an account change makes, to sign before approving (administrator)", "id")
	paths["/api/v1/keys/{id}/approve"] = obj{"post": with(obj{"summary": "Put another person's proposed key in force (administrator)", "parameters": []any{pathParam("id")}, "requestBody": approval}, obj{"200": ok("key", key)})}
	paths["/api/v1/keys/{id}/statement"] = statementOf("The statement approving a key makes, to sign before approving (administrator)", "id")
	paths["/api/v1/admin/policy/proposals"] = obj{"get": with(obj{"summary": "Policy versions waiting for a second administrator, oldest first, with their rules (administrator)"},
		obj{"200": ok("proposals", obj{"type": "object", "properties": obj{"proposals": obj{"type": "array", "items": obj{"type": "object"}}}})})}
	paths["/api/v1/admin/policy/{version}/statement"] = statementOf("The statement approving a policy version makes: its rule set's SHA-256, to sign before approving (administrator)", "version")
	paths["/api/v1/keys/{id}/revoke"] = obj{"post": with(obj{"summary": "Revoke your key at once; another's key (lost) is revoked by two administrators: the first call proposes, another administrator's applies",
		"parameters": []any{pathParam("id")}, "requestBody": jsonBody(obj{"type": "object", "required": []string{"reason"}, "properties": obj{"reason": text("")}})}, obj{"200": ok("key", key)})}
	paths["/api/v1/admin/policy/{version}/approve"] = obj{"post": with(obj{"summary": "Put a proposed policy version in force (another administrator)",
		"parameters": []any{pathParam("version")}, "requestBody": approval}, obj{"200": ok("the version in force", obj{"type": "object"})})}
	logPath := func(summary string, params ...any) obj {
		return obj{"get": obj{"summary": summary, "security": []any{}, "parameters": params,
			"responses": obj{"200": obj{"description": summary, "content": obj{"text/plain": obj{}}}, "404": obj{"description": "not there yet"}}}}
	}
	paths["/api/v1/openapi.json"] = logPath("This document")
	paths["/checkpoint"] = logPath("The audit log's newest signed checkpoint (c2sp.org/tlog-checkpoint), with witness cosignatures")
	paths["/tile/{path}"] = logPath("A hash tile (public) or an entry bundle (auditors only, with a Bearer token; each read audited) (c2sp.org/tlog-tiles)", pathParam("path"))
	paths["/proof/{index}"] = logPath("A c2sp.org/tlog-proof document for one entry", pathParam("index"))
	paths["/proof/consistency"] = logPath("The consistency proof between sizes old and new",
		obj{"name": "old", "in": "query", "required": true, "schema": obj{"type": "integer"}}, obj{"name": "new", "in": "query", "schema": obj{"type": "integer"}})

	var ops []string
	var desc strings.Builder
	desc.WriteString("One human decision or report, sent to the measure's workflow. Operations and the stages that allow them:\n\n")
	for _, op := range authz.Ops {
		if op == authz.OpEditDraft {
			continue
		}
		ops = append(ops, string(op))
		desc.WriteString("- `" + string(op) + "`: ")
		for i, s := range workflows.StagesFor(op) {
			if i > 0 {
				desc.WriteString(", ")
			}
			desc.WriteString(string(s))
		}
		if measure.Judges(op) {
			desc.WriteString(" (judges a version: `digest` required)")
		}
		desc.WriteString("\n")
	}
	desc.WriteString("\nAn operation that judges a version names, in `digest`, the digest of the version the person decided on (GET the measure for it). " +
		"Without it the answer is 400 naming the field; when the measure has moved on it is 409 `stale_version` naming both versions, and nothing is recorded.\n")
	paths["/api/v1/measures/{measure}/actions/{op}"] = obj{"post": with(obj{"summary": "Take an action on a measure", "description": desc.String(),
		"parameters": []any{pathParam("measure"), obj{"name": "op", "in": "path", "required": true, "schema": obj{"type": "string", "enum": ops}},
			obj{"name": "Idempotency-Key", "in": "header", "schema": obj{"type": "string", "maxLength": service.MaxIdempotencyKey},
				"description": "send the same key when retrying after a lost answer: the first outcome is returned, the action is not taken twice; a key names one request (measure, operation, body): reused for another, 409"}},
		"requestBody": jsonBody(ref("Action"))}, obj{"200": ok("the measure after the action", ref("Measure"))})}

	target := obj{"type": "object", "required": []string{"kind", "value"}, "additionalProperties": false, "properties": obj{
		"kind": obj{"type": "string", "enum": []string{"ip", "cidr", "domain", "url", "asn"}}, "value": bounded("address, prefix, name, URL or AS number", measure.MaxTargetValue, "one line"),
		"port": obj{"type": "integer"}, "location": obj{"type": "string", "enum": []string{"domestic", "abroad", "unknown"}},
		"country": str("ISO 3166-1 alpha-2"), "role": obj{"type": "string", "enum": []string{"c2", "staging", "exfil", "proxy", "botnet_node"}},
		"ownership":        obj{"type": "string", "enum": []string{"attacker_controlled", "compromised_third_party", "unknown"}},
		"hosting_provider": line(""), "registrar": line(""), "source": line("where an imported target came from: stix:<object id> or misp:<attribute uuid>")}}
	plan := obj{"type": "object", "additionalProperties": false, "properties": obj{
		"title": line(""), "legal_basis": obj{"type": "string", "enum": []string{"police_duties_act_6_2", "sdf_act_communications_protection"}},
		"kind":       obj{"type": "string", "enum": []string{"order_administrator", "self_execute"}},
		"technique":  obj{"type": "string", "enum": []string{"disable_malware", "stop_process", "block_c2", "push_uninstaller", "disable_account", "other"}},
		"operations": list(text(""), measure.MaxItems), "self_execution_fallback": obj{"type": "boolean"}, "requested_window": str("Go duration, e.g. 336h"),
		"executors": list(bounded("user ID of a known user", measure.MaxID, "one line"), measure.MaxItems), "rollback_plan": text(""), "data_handling": text(""),
		"alternatives": list(obj{"type": "object", "properties": obj{"means": text(""), "outcome": obj{"type": "string", "enum": []string{"tried", "impossible", "rejected"}}, "reason": text("")}}, measure.MaxItems),
		"necessity":    text(""), "proportionality": text(""), "collateral": text(""), "notification_plan": text(""),
		"emergency_justification": text(""), "urgent": obj{"type": "boolean"},
		"extra": obj{"type": "object", "description": fmt.Sprintf("free-form; at most %d bytes of JSON, every string bounded as text", 2*measure.MaxText)}}}
	action := obj{"type": "object", "additionalProperties": false, "properties": obj{
		"decision": line("approve|return (reviews); approve|reject|return (votes); complied|not_complied (order_outcome); accepted|impropriety (post_hoc_decision)"),
		"reason":   text("required for returns, rejections, withdrawals, information requests, emergencies"), "conditions": list(bounded("", 4*measure.MaxLine, "tab and line breaks allowed"), measure.MaxItems),
		"conflicted": obj{"type": "boolean", "description": "declare_conflict: required; true when the member has a conflict and steps aside, false when none"},
		"digest":     line("the digest of the version decided on; required for legal_review, command_review, record_gate, declare_conflict, vote, request_info, post_hoc_decision, verify_report"),
		"checklist": obj{"type": "array", "uniqueItems": true, "items": obj{"type": "string", "enum": measure.LegalRequirements},
			"description": "legal_review: the statutory requirements the reviewer confirms; an approval confirms all six"},
		"gate": obj{"type": "string", "enum": []string{"foreign_ministry", "pm_order"}}, "reference": line(""),
		"order": obj{"type": "object", "properties": obj{"addressee": line(""), "content": text(""), "deadline": obj{"type": "string", "format": "date-time"}, "proof_of_delivery": text("")}},
		"steps": list(obj{"type": "object", "properties": obj{"target": bounded("a target of the approved version", measure.MaxTargetValue, "one line"),
			"technique": line("the approved technique"), "action": bounded("", 4*measure.MaxLine, "tab and line breaks allowed"),
			"result": obj{"type": "string", "enum": []string{"success", "failure", "partial"}}, "witness": bounded("user ID of a known user, not the executor", measure.MaxID, "one line"),
			"at": obj{"type": "string", "format": "date-time", "description": "inside the approved (or emergency) window, not ahead of the server's clock by more than a minute"}}}, measure.MaxSteps),
		"body":          text("report text, answer, notification to the Commission, remediation"),
		"notifications": list(obj{"type": "object", "properties": obj{"addressee": line(""), "status": obj{"type": "string", "enum": []string{"sent", "deferred"}}, "reason": text("")}}, measure.MaxNotices),
		"signature":     signature,
	}}
	return obj{
		"openapi": "3.1.0",
		"info": obj{"title": "takedown API", "version": "1",
			"description": "Case management and authorization of access-and-neutralization measures."},
		"servers":  []any{obj{"url": "/"}},
		"security": []any{obj{"token": []any{}}},
		"paths":    paths,
		"components": obj{
			"securitySchemes": obj{"token": obj{"type": "http", "scheme": "bearer"}},
			"schemas": obj{
				"Error": obj{"type": "object", "properties": obj{"status": obj{"type": "integer"}, "code": str(""), "field": str(""), "rule": str(""), "message": str("")}},
				"Actor": obj{"type": "object"}, "Target": target, "Plan": plan, "Action": action,
				"CaseInput": obj{"type": "object", "required": []string{"title"}, "additionalProperties": false,
					"properties": obj{"title": line(""), "summary": text(""), "attribution": obj{"type": "object"}, "harm": obj{"type": "object"}}},
				"Case": obj{"type": "object"}, "Measure": obj{"type": "object"}, "Evidence": obj{"type": "object"}, "AuditRecord": obj{"type": "object"},
				"ImportPreview": obj{"type": "object", "properties": obj{
					"id": str("imp-…"), "measure": str(""), "format": obj{"type": "string", "enum": []string{"stix", "misp"}},
					"source":  obj{"type": "object", "properties": obj{"id": str("bundle--… or the MISP event's UUID"), "name": str(""), "producer": str(""), "tlp": str(""), "sha256": str("of the file")}},
					"objects": obj{"type": "integer"}, "targets": arr(obj{"type": "object", "properties": obj{"target": ref("Target"), "notes": arr(str("what to look at before confirming"))}}),
					"attribution":       arr(obj{"type": "object", "properties": obj{"kind": str("threat-actor, intrusion-set, campaign, malware or tool"), "name": str(""), "aliases": arr(str("")), "ref": str("")}}),
					"skipped":           arr(obj{"type": "object", "properties": obj{"ref": str(""), "type": str(""), "reason": str("")}}),
					"skipped_by_reason": arr(obj{"type": "object", "properties": obj{"type": str(""), "reason": str(""), "count": obj{"type": "integer"}}}),
					"counts":            obj{"type": "object"}, "targets_sha256": str("what confirming names"), "imported_at": str("set once confirmed")}},
			},
		},
	}
}

func pathParam(name string) obj {
	return obj{"name": name, "in": "path", "required": true, "schema": obj{"type": "string"}}
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, openAPIDoc())
}
