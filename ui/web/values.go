package web

import (
	"encoding/json"
	"fmt"
	"github.com/takedown/takedown/internal/intel"
	"slices"
	"strings"
	"time"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
)

// valueNames are the codes of plan, target and evidence fields in words.
var valueNames = map[string][2]string{ // code: {ja, en}
	"police_duties_act_6_2":             {"警察官職務執行法第6条の2", "Police Duties Execution Act, art. 6-2"},
	"sdf_act_communications_protection": {"自衛隊法(通信防護措置)", "SDF Act (communications protection)"},
	"self_execute":                      {"自ら実施", "carried out by the agency"},
	"order_administrator":               {"管理者への命令", "order to the administrator"},
	"disable_malware":                   {"不正プログラムの無害化", "disable the malware"},
	"stop_process":                      {"プロセスの停止", "stop a process"},
	"block_c2":                          {"C2通信の遮断", "block the C2 link"},
	"push_uninstaller":                  {"削除プログラムの送信", "push an uninstaller"},
	"disable_account":                   {"攻撃者アカウントの無効化", "disable the attacker's account"},
	"other":                             {"その他", "other"},
	"ip":                                {"IPアドレス", "IP address"},
	"cidr":                              {"アドレス範囲", "address range"},
	"domain":                            {"ドメイン", "domain"},
	"url":                               {"URL", "URL"},
	"asn":                               {"AS番号", "AS number"},
	"domestic":                          {"国内", "in Japan"},
	"abroad":                            {"国外", "abroad"},
	"unknown":                           {"不明", "unknown"},
	"c2":                                {"C2サーバ", "C2 server"},
	"staging":                           {"中継・配布", "staging"},
	"exfil":                             {"情報窃取先", "exfiltration"},
	"proxy":                             {"プロキシ", "proxy"},
	"botnet_node":                       {"ボットネットの端末", "botnet node"},
	"attacker_controlled":               {"攻撃者が管理", "controlled by the attacker"},
	"compromised_third_party":           {"第三者の機器(乗っ取り)", "a third party's, compromised"},
	"tried":                             {"実施済み", "tried"},
	"impossible":                        {"実施不能", "impossible"},
	"rejected":                          {"不採用", "rejected"},
	"own_investigation":                 {"自らの捜査", "own investigation"},
	"partner_report":                    {"協力機関からの提供", "partner report"},
	"victim_report":                     {"被害者からの届出", "victim report"},
	"communications_information":        {"通信情報(承認に基づく)", "communications information (under approval)"},
	"osint":                             {"公開情報", "open sources"},
	"role:officer":                      {"事案担当官", "case officer"},
	"role:legal":                        {"法務審査官", "legal reviewer"},
	"role:commander":                    {"指揮官", "commander"},
	"role:executor":                     {"サイバー危害防止措置執行官", "executor"},
	"role:commission_secretariat":       {"委員会事務局", "Commission secretariat"},
	"role:commissioner":                 {"委員", "Commission member"},
	"role:commission_chair":             {"委員長", "Commission chair"},
	"role:auditor":                      {"監査担当者", "auditor"},
	"role:admin":                        {"システム管理者", "administrator"},
	"role:*":                            {"全員", "everyone"},
}

// val is a code in words, in lang; an empty value is a dash, an unknown code itself.
func val(lang, code string) string {
	if code == "" {
		return "—"
	}
	n, ok := valueNames[code]
	if !ok {
		return code
	}
	if lang == English {
		return n[1]
	}
	return n[0]
}

func yesNo(lang string, b bool) string {
	if b {
		return T(lang, "yes")
	}
	return T(lang, "no")
}

// duration is a length of time in days and hours, in lang.
func duration(lang string, d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	days, hours := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	mins := int(d % time.Hour / time.Minute)
	var parts []string
	add := func(n int, ja, en string) {
		if n == 0 {
			return
		}
		if lang == English {
			unit := en
			if n != 1 {
				unit += "s"
			}
			parts = append(parts, fmt.Sprintf("%d %s", n, unit))
		} else {
			parts = append(parts, fmt.Sprintf("%d%s", n, ja))
		}
	}
	add(days, "日", "day")
	add(hours, "時間", "hour")
	add(mins, "分", "minute")
	if len(parts) == 0 { // under a minute
		add(max(int(d/time.Second), 1), "秒", "second")
	}
	if len(parts) == 0 {
		return "—"
	}
	if lang == English {
		return strings.Join(parts, " ")
	}
	return strings.Join(parts, "")
}

func port(n int) string {
	if n == 0 {
		return "—"
	}
	return fmt.Sprint(n)
}

// prettyJSON shows a free-form value as indented JSON, nothing escaped that need not be.
func prettyJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(b.String())
}

// flatJSON lists a JSON object's members as (name, value) pairs in name order, nested
// objects' members named with dots; values that are not text are shown as JSON.
func flatJSON(raw []byte) [][2]string {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return nil
	}
	var out [][2]string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				if prefix == "" && k == "imported" {
					continue // imported attribution: listed apart (importedAttribution)
				}
				name := k
				if prefix != "" {
					name = prefix + "." + k
				}
				walk(name, x[k])
			}
		case string:
			out = append(out, [2]string{prefix, x})
		case nil:
		default:
			out = append(out, [2]string{prefix, strings.ReplaceAll(prettyJSON(x), "\n", " ")})
		}
	}
	walk("", v)
	return out
}

// person names someone by name and organisation; an unknown ID shows itself.
func (v measureView) person(id string) string {
	if p, ok := v.People[id]; ok {
		return p.Name + " (" + p.Org + ")"
	}
	return actorWords(v.Lang, id)
}

// actorWords is an actor no account names: the workflow itself, or an ID.
func actorWords(lang, id string) string {
	if id == "system" {
		return T(lang, "the system")
	}
	return id
}

// actionNames are the recorded actions that are not operations, in words.
var actionNames = map[string][2]string{
	"notification.sent": {"通知の送信", "notification sent"}, "import.uploaded": {"脅威情報ファイルのアップロード", "file uploaded for import"},
	"measure.created": {"措置承認申請の作成", "request opened"}, "targets.added": {"対象の追加", "targets added"},
	"targets.removed": {"対象の削除", "targets removed"}, "targets.import": {"脅威情報ファイルの取込み", "threat-intelligence file import"},
	"evidence.access": {"証拠資料の閲覧", "evidence read"}, "measure.create": {"措置承認申請の作成", "opening a request"},
	"key.propose": {"署名鍵の申請", "signing key proposal"}, "key.approve": {"署名鍵の承認", "signing key approval"},
	"key.revoke": {"署名鍵の失効", "signing key revocation"}, "notification.preferences": {"通知の設定", "notification choices"},
	"policy.propose": {"ポリシーの提案", "policy proposal"}, "policy.approve": {"ポリシーの承認", "policy approval"},
	"role_change.propose": {"役割変更の申請", "role change proposal"}, "role_change.approve": {"役割変更の承認", "role change approval"}, "evidence.added": {"証拠資料の追加", "evidence added"},
	"evidence.accessed": {"証拠資料の閲覧", "evidence read"}, "plan.updated": {"計画の修正", "plan changed"},
	"decide":       {"委員会の議決", "the Commission's decision"},
	"key.proposed": {"署名鍵の申請", "signing key proposed"}, "key.registered": {"署名鍵の登録", "signing key registered"},
	"key.revoke_proposed": {"署名鍵の失効申請", "signing key revocation proposed"}, "key.revoked": {"署名鍵の失効", "signing key revoked"},
	"key.withdrawn": {"署名鍵の申請取下げ", "signing key proposal withdrawn"}, "gates_satisfied": {"協議の完了", "consultations complete"},
	"deadline.decision_overdue":                {"期限超過: 委員会の判断", "overdue: the Commission's decision"},
	"deadline.expired":                         {"承認の有効期間の満了", "approval window passed unused"},
	"deadline.commission_notification_overdue": {"期限超過: 委員会への事後通知", "overdue: notification of the Commission"},
	"deadline.post_hoc_review_overdue":         {"期限超過: 事後審査", "overdue: post-hoc review"},
	"deadline.report_overdue":                  {"期限超過: 実施報告", "overdue: execution report"},
	"deadline.notification_overdue":            {"期限超過: 関係者への通知", "overdue: notification of affected parties"},
	"deadline.order_deadline_passed":           {"命令の履行期限の経過", "the order's deadline passed"},
}

// actionName is a recorded action in words: an operation, a refusal of one, a read, or the
// workflow's own.
func actionName(lang, action string) string {
	if n, ok := actionNames[action]; ok {
		if lang == English {
			return n[1]
		}
		return n[0]
	}
	if op, ok := strings.CutPrefix(action, "refused."); ok {
		return T(lang, "refused") + ": " + actionName(lang, op)
	}
	if what, ok := strings.CutPrefix(action, "read."); ok {
		if _, ok := messages["read:"+what]; ok {
			what = T(lang, "read:"+what)
		}
		return T(lang, "read") + ": " + what
	}
	return opName(lang, authz.Op(action))
}

// exchanges are a measure's information requests and the answers to them, in order.
func exchanges(h []audit.Entry) []audit.Entry {
	var out []audit.Entry
	for _, r := range h {
		if r.Action == string(authz.OpRequestInfo) || r.Action == string(authz.OpRespondInfo) {
			out = append(out, r)
		}
	}
	return out
}

// bodyOf is the text an entry carries besides its reason (an answer to a request).
func bodyOf(r audit.Entry) string {
	b, _ := r.Details["body"].(string)
	if b != "" && r.Reason != "" {
		return "\n" + b
	}
	return b
}

// fieldWords names an input field, as a refusal's JSON path gives it (plan.necessity,
// targets[3].value, order.deadline), in words: its last named part.
func fieldWords(lang, field string) string {
	if field == "" {
		return ""
	}
	parts := strings.FieldsFunc(field, func(r rune) bool { return r == '.' || r == '[' || r == ']' })
	for i := len(parts) - 1; i >= 0; i-- {
		if k, ok := inputNames[parts[i]]; ok {
			return T(lang, k)
		}
		if k, ok := fieldNames[parts[i]]; ok {
			return T(lang, k)
		}
	}
	return ""
}

// inputNames are the fields of forms and API bodies, besides a plan's, by their message keys.
var inputNames = map[string]string{
	"reason": "reason", "body": "body", "decision": "decision", "conditions": "conditions", "checklist": "statutory requirements",
	"digest": "digest", "conflicted": "conflict", "gate": "gate", "reference": "reference", "steps": "execution steps",
	"target": "target", "witness": "step witness", "at": "when", "notifications": "notifications", "addressee": "addressee",
	"order": "order", "deadline": "order deadline", "content": "order content", "targets": "targets", "value": "value",
	"values": "targets", "location": "location", "country": "country", "role": "role", "port": "port", "ownership": "ownership",
	"file": "file", "kind": "kind", "provenance": "provenance", "title": "title", "summary": "summary", "password": "password",
	"username": "username", "code": "enrolment code", "requested_window": "requested window", "data_handling": "data handling",
	"emergency_justification": "emergency justification", "tq": "search targets", "sq": "search steps", "from": "version",
	"Idempotency-Key": "reference",
}

// listOf reads a changed value that is a JSON list of strings.
func listOf(value string) ([]string, bool) {
	if !strings.HasPrefix(value, "[") {
		return nil, false
	}
	var items []string
	if json.Unmarshal([]byte(value), &items) != nil {
		return nil, false
	}
	return items, true
}

// importedAttribution is the attribution imports added to a case, as the pages list it.
func importedAttribution(raw []byte) []intel.Attribution {
	var obj struct {
		Imported []intel.Attribution `json:"imported"`
	}
	_ = json.Unmarshal(raw, &obj)
	return obj.Imported
}
